"""What a criterion is and what its evaluation returns, with the shared helpers (date windows,
Child-Pugh). An outcome is in the sense of eligibility for inclusions and exclusions alike:
PASS does not stand in the way of enrolment, FAIL makes the subject ineligible, MISSING lacks
data; ``CriterionResult.met`` gives the protocol's own wording. Windows are inclusive and
measured back from ``Context.reference_date``.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from . import settings as elig_settings
from .models import (
    Ascites,
    EligibilityAssessment,
    Encephalopathy,
)


class CriterionOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"


INCLUSION = "inclusion"
EXCLUSION = "exclusion"


@dataclass(frozen=True)
class Context:
    assessment: EligibilityAssessment
    reference_date: date | None
    protocol: dict
    lab_limits: dict
    lab_max_age_days: int

    @property
    def subject(self):
        return self.assessment.subject

    def value(self, field: str):
        return getattr(self.assessment, field)

    def unanswered(self, *fields: str) -> list[str]:
        """Verbose names of the fields among ``fields`` that have no answer."""
        return [label(f) for f in fields if self.value(f) in (None, "")]


def label(field: str) -> str:
    """The verbose name of a CRF field (``subject.<name>`` for a fact taken from the subject)."""
    if field.startswith("subject."):
        from subjects.models import Subject

        name = Subject._meta.get_field(field.removeprefix("subject.")).verbose_name
        return f"{name} (subject)"
    model_field = EligibilityAssessment._meta.get_field(field)
    if model_field.is_relation and not model_field.concrete:  # the rows of a child model
        return str(model_field.related_model._meta.verbose_name_plural).capitalize()
    return str(model_field.verbose_name)


def missing(names: list[str]) -> tuple[CriterionOutcome, str]:
    return CriterionOutcome.MISSING, "Missing: " + "; ".join(names) + "."


@dataclass(frozen=True)
class CriterionResult:
    code: str
    kind: str
    text: str
    outcome: CriterionOutcome
    reason: str

    @property
    def passes(self) -> bool:
        return self.outcome == CriterionOutcome.PASS

    @property
    def met(self) -> bool | None:
        """The protocol's wording: is the criterion (inclusion or exclusion) fulfilled?"""
        if self.outcome == CriterionOutcome.MISSING:
            return None
        return (self.outcome == CriterionOutcome.PASS) == (self.kind == INCLUSION)

    @property
    def met_label(self) -> str:
        if self.met is None:
            return "missing data"
        if self.kind == EXCLUSION:
            return "met: excluded" if self.met else "not met"
        return "met" if self.met else "not met"


@dataclass(frozen=True)
class Criterion:
    code: str
    kind: str
    text: str
    fields: tuple[str, ...]
    check: Callable[[Context], tuple[CriterionOutcome, str]]
    windowed: bool = False

    def evaluate(self, ctx: Context) -> CriterionResult:
        outcome, reason = self.check(ctx)
        return CriterionResult(self.code, self.kind, self.text, outcome, reason)


# --- date windows -----------------------------------------------------------------------------


def months_before(day: date, months: int) -> date:
    """The same day ``months`` calendar months earlier (clamped to the month's last day)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def window_start(ref: date, *, days: int | None = None, months: int | None = None) -> date:
    """The first day of the window; a window reaching before year 1 starts on ``date.min``."""
    try:
        return months_before(ref, months) if months is not None else ref - timedelta(days=days)
    except (OverflowError, ValueError):
        return date.min


def within(event: date, ref: date, *, days: int | None = None, months: int | None = None) -> bool:
    """Is ``event`` within the window before ``ref`` (inclusive), or after ``ref``?"""
    return event >= window_start(ref, days=days, months=months)


def describe_window(days: int | None = None, months: int | None = None) -> str:
    return f"{months} months" if months is not None else f"{days} days"


def dated_exclusion(
    ctx: Context, flag: str, date_field: str, what: str, *, days=None, months=None
) -> tuple[CriterionOutcome, str]:
    """An exclusion that applies when the most recent ``what`` falls in the window."""
    received = ctx.value(flag)
    if received is None:
        return missing([label(flag)])
    if received is False:
        return CriterionOutcome.PASS, f"No {what} ever."
    when = ctx.value(date_field)
    if when is None:
        return missing([label(date_field)])
    if ctx.reference_date is None:
        return missing(["planned randomization date (the window is counted back from it)"])
    window = describe_window(days, months)
    if within(when, ctx.reference_date, days=days, months=months):
        return (
            CriterionOutcome.FAIL,
            f"The most recent {what} ({when:%Y-%m-%d}) is within {window} before the reference "
            f"date {ctx.reference_date:%Y-%m-%d}.",
        )
    return (
        CriterionOutcome.PASS,
        f"The most recent {what} ({when:%Y-%m-%d}) is more than {window} before the reference "
        f"date {ctx.reference_date:%Y-%m-%d}.",
    )


def simple_exclusion(field: str, present: str, absent: str):
    """An exclusion decided by one yes/no fact."""

    def check(ctx: Context) -> tuple[CriterionOutcome, str]:
        value = ctx.value(field)
        if value is None:
            return missing([label(field)])
        return (CriterionOutcome.FAIL, present) if value else (CriterionOutcome.PASS, absent)

    return check


def combine(parts: list[tuple[CriterionOutcome, str]]) -> tuple[CriterionOutcome, str]:
    """FAIL if any part fails (its reasons), else MISSING if any misses, else PASS (all reasons)."""
    for wanted in (CriterionOutcome.FAIL, CriterionOutcome.MISSING):
        chosen = [reason for outcome, reason in parts if outcome == wanted]
        if chosen:
            return wanted, " ".join(chosen)
    return CriterionOutcome.PASS, " ".join(reason for _, reason in parts)


# --- Child-Pugh ---------------------------------------------------------------------------------

CHILD_PUGH_FIELDS = ("total_bilirubin", "albumin", "inr", "ascites", "encephalopathy")


@dataclass(frozen=True)
class ChildPugh:
    score: int
    grade: str  # "A", "B" or "C"

    def __str__(self):
        return f"Child-Pugh {self.grade}{self.score}"


def bilirubin_points(bilirubin) -> int:
    """Child-Pugh points of a total bilirubin in µmol/L: < 34.2 → 1, 34.2-51.3 → 2, > 51.3 → 3
    (< 2, 2-3, > 3 mg/dL: ``settings.BILIRUBIN``)."""
    t, value = elig_settings.CHILD_PUGH, Decimal(bilirubin)
    return 1 if value < t["bilirubin_2_from"] else 2 if value <= t["bilirubin_3_above"] else 3


def albumin_points(albumin) -> int:
    """Child-Pugh points of an albumin in g/L: > 35 → 1, 28-35 → 2, < 28 → 3."""
    t, value = elig_settings.CHILD_PUGH, Decimal(albumin)
    return 1 if value > t["albumin_2_at_most"] else 2 if value >= t["albumin_3_below"] else 3


def inr_points(inr) -> int:
    """Child-Pugh points of an INR: < 1.7 → 1, 1.7-2.3 → 2, > 2.3 → 3."""
    t, value = elig_settings.CHILD_PUGH, Decimal(inr)
    return 1 if value < t["inr_2_from"] else 2 if value <= t["inr_3_above"] else 3


def child_pugh(a: EligibilityAssessment) -> ChildPugh | None:
    """Score and class from the five components (SI values); None while any is missing."""
    t = elig_settings.CHILD_PUGH
    if any(getattr(a, f) in (None, "") for f in CHILD_PUGH_FIELDS):
        return None
    points = bilirubin_points(a.total_bilirubin) + albumin_points(a.albumin) + inr_points(a.inr)
    points += {Ascites.NONE: 1, Ascites.SLIGHT: 2, Ascites.MODERATE: 3}[a.ascites]
    points += {Encephalopathy.NONE: 1, Encephalopathy.GRADE_1_2: 2, Encephalopathy.GRADE_3_4: 3}[
        a.encephalopathy
    ]
    grade = "A" if points <= t["class_a_max"] else "B" if points <= t["class_b_max"] else "C"
    return ChildPugh(points, grade)
