"""The criteria registry: IN01-IN12 and EX01-EX22, each with its protocol text, the CRF fields it
uses and its evaluation.

Representation of results (read this before using them)
-------------------------------------------------------
Every evaluation returns a ``CriterionOutcome`` **in the sense of eligibility**, the same for
inclusions and exclusions, so it is never ambiguous:

* ``PASS``    — this criterion does not stand in the way of enrolment
                (an inclusion criterion is met; an exclusion criterion is absent);
* ``FAIL``    — this criterion makes the subject ineligible
                (an inclusion criterion is not met; an exclusion criterion is present);
* ``MISSING`` — the CRF lacks data needed to decide.

``CriterionResult.met`` gives the protocol's own wording: for an inclusion, met = PASS; for an
exclusion, met (= the exclusion applies) = FAIL; ``None`` when data are missing.

Numbers come from ``eligibility.settings``; nothing here hard-codes a threshold. Time windows are
evaluated against ``Context.reference_date`` (planned randomization date at screening, actual date
at randomization). "Within N days before" is inclusive: an event N days before the reference date
is within the window, one N + 1 days before is not; an event dated after the reference date counts
as within (it cannot be "before randomization" and still be acceptable).
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from . import settings as elig_settings
from . import units
from .models import (
    Ascites,
    DiagnosisBasis,
    EligibilityAssessment,
    Encephalopathy,
    ExcludedHistology,
    Serology,
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


# --- inclusion checks ---------------------------------------------------------------------------


def in01_age(ctx: Context):
    s = ctx.subject
    if s.consent_date is None:
        return missing(["informed consent date (age is taken at consent)"])
    age = s.age_on(s.consent_date)
    if age is None:
        return missing(["date of birth or age of the subject"])
    low, high = ctx.protocol["age_min"], ctx.protocol["age_max"]
    if low <= age <= high:
        return CriterionOutcome.PASS, f"Aged {age} at consent, within {low}-{high}."
    return CriterionOutcome.FAIL, f"Aged {age} at consent, outside {low}-{high} (inclusive)."


def in02_diagnosis(ctx: Context):
    basis = ctx.value("diagnosis_basis")
    if not basis:
        return missing([label("diagnosis_basis")])
    if basis != DiagnosisBasis.CLINICAL:
        return CriterionOutcome.PASS, f"{DiagnosisBasis(basis).label} diagnosis of HCC."
    cirrhosis = ctx.value("cirrhosis")
    if cirrhosis is None:
        return missing([label("cirrhosis") + " (a clinical diagnosis needs cirrhosis)"])
    if cirrhosis:
        return CriterionOutcome.PASS, "Clinical diagnosis of HCC per AASLD in a cirrhotic patient."
    return (
        CriterionOutcome.FAIL,
        "A clinical diagnosis is accepted only in cirrhosis; without cirrhosis the diagnosis must "
        "be histological or cytological.",
    )


def in03_bclc(ctx: Context):
    stage = ctx.value("bclc_stage")
    if not stage:
        return missing([label("bclc_stage")])
    accepted = ctx.protocol["bclc_stages"]
    if stage not in accepted:
        return (
            CriterionOutcome.FAIL,
            f"BCLC stage {stage}; the protocol requires {' or '.join(accepted)}.",
        )
    unsuitable = ctx.value("unsuitable_for_radical_therapy")
    progressed = ctx.value("progressed_after_local_therapy")
    if unsuitable or progressed:
        why = "unsuitable for radical therapy" if unsuitable else "progressed after such therapy"
        return CriterionOutcome.PASS, f"BCLC stage {stage}, {why}."
    if unsuitable is None or progressed is None:
        return missing(
            ctx.unanswered("unsuitable_for_radical_therapy", "progressed_after_local_therapy")
        )
    return (
        CriterionOutcome.FAIL,
        f"BCLC stage {stage}, but neither unsuitable for radical surgical/local therapy nor "
        "progressed after it.",
    )


def in04_no_systemic(ctx: Context):
    """Any prior therapy row fails, whatever its setting (adjuvant sorafenib is prior systemic
    therapy); a "yes" without rows lacks the rows; a "no" with rows is refused at entry."""
    rows = ctx.assessment.prior_therapy_list()
    if rows:
        listed = "; ".join(row.describe() for row in rows)
        return CriterionOutcome.FAIL, f"Prior systemic therapy for HCC: {listed}."
    prior = ctx.value("prior_systemic_therapy")
    if prior is None:
        return missing([label("prior_systemic_therapy")])
    if prior:
        return missing(
            [f"{label('prior_therapies')} (agent, setting, dates): the answer is yes, list each"]
        )
    return CriterionOutcome.PASS, "No prior systemic therapy for HCC."


def in05_measurable(ctx: Context):
    count = ctx.value("measurable_lesions")
    if count is None:
        return missing([label("measurable_lesions")])
    needed = ctx.protocol["measurable_lesions_min"]
    if count < needed:
        return (
            CriterionOutcome.FAIL,
            f"{count} measurable lesion(s) per RECIST 1.1; at least {needed} needed.",
        )
    treated = ctx.value("target_lesion_locally_treated")
    if treated is None:
        return missing([label("target_lesion_locally_treated")])
    if not treated:
        return (
            CriterionOutcome.PASS,
            f"{count} measurable lesion(s); target lesion not treated locally.",
        )
    progressed = ctx.value("target_lesion_progressed")
    if progressed is None:
        return missing([label("target_lesion_progressed")])
    if progressed:
        return (
            CriterionOutcome.PASS,
            f"{count} measurable lesion(s); target lesion treated locally, since PD.",
        )
    return (
        CriterionOutcome.FAIL,
        "The target lesion was treated locally and has not progressed radiologically since: "
        "choose another target lesion.",
    )


def in06_child_pugh(ctx: Context):
    names = ctx.unanswered(*CHILD_PUGH_FIELDS, "hepatic_encephalopathy_history")
    cp = child_pugh(ctx.assessment)
    history = ctx.value("hepatic_encephalopathy_history")
    required = ctx.protocol["child_pugh_class"]
    if cp is not None and cp.grade != required:
        return CriterionOutcome.FAIL, f"{cp} (score {cp.score}); class {required} required."
    if history:
        return CriterionOutcome.FAIL, "History of hepatic encephalopathy."
    if names:
        return missing(names)
    return CriterionOutcome.PASS, f"{cp} (score {cp.score}), no history of hepatic encephalopathy."


def in07_ecog(ctx: Context):
    ecog = ctx.value("ecog")
    if ecog is None:
        return missing([label("ecog")])
    accepted = ctx.protocol["ecog_accepted"]
    if ecog in accepted:
        return CriterionOutcome.PASS, f"ECOG {ecog}."
    return CriterionOutcome.FAIL, f"ECOG {ecog}; {' or '.join(map(str, accepted))} required."


def in08_life_expectancy(ctx: Context):
    weeks = ctx.value("life_expectancy_weeks")
    if weeks is None:
        return missing([label("life_expectancy_weeks")])
    needed = ctx.protocol["life_expectancy_min_weeks"]
    if weeks >= needed:
        return CriterionOutcome.PASS, f"Predicted life expectancy {weeks} weeks (≥ {needed})."
    return (
        CriterionOutcome.FAIL,
        f"Predicted life expectancy {weeks} weeks; at least {needed} needed.",
    )


# The screening labs, in SI units (the conversion table: ``units``).
LAB_FIELDS: tuple[str, ...] = units.LAB_NAMES
RENAL = ("creatinine", "creatinine_clearance")


def lab_text(ctx: Context, field: str) -> str:
    """A lab value for a reason: its SI value and, when reported in another unit, as reported
    ("Total bilirubin (µmol/L) 59.9 (reported 3.5 mg/dL)")."""
    text = f"{label(field)} {ctx.value(field)}"
    spec = units.LABS[field]
    reported = units.as_decimal(ctx.value(units.reported_field(field)))
    code = ctx.value(units.unit_field(field))
    if reported is not None and code and code != spec.si_unit.code and spec.accepts(code):
        text += f" (reported {units.plain(reported)} {spec.unit(code).symbol})"
    return text


def _lab_ok(value: Decimal, limit: dict) -> bool:
    if "min" in limit and value < limit["min"]:
        return False
    return not ("max" in limit and value > limit["max"])


def in09_labs(ctx: Context):
    limits = ctx.lab_limits
    failures, absent = [], []
    lab_date = ctx.value("lab_date")
    if lab_date is None:
        absent.append(label("lab_date"))
    elif ctx.reference_date is None:
        absent.append("planned randomization date (lab recency is counted back from it)")
    elif not within(lab_date, ctx.reference_date, days=ctx.lab_max_age_days):
        failures.append(
            f"labs of {lab_date:%Y-%m-%d} are more than {ctx.lab_max_age_days} days before the "
            f"reference date {ctx.reference_date:%Y-%m-%d}: repeat them"
        )
    for field in LAB_FIELDS:
        if field in RENAL:
            continue
        value = ctx.value(field)
        if value is None:
            absent.append(label(field))
        elif not _lab_ok(Decimal(value), limits[field]):
            failures.append(f"{lab_text(ctx, field)} fails {limits[field]['basis']}")
    # Renal function: either creatinine or creatinine clearance within its limit suffices.
    renal = {f: ctx.value(f) for f in RENAL}
    renal_ok = [f for f, v in renal.items() if v is not None and _lab_ok(Decimal(v), limits[f])]
    if not renal_ok:
        if all(v is not None for v in renal.values()):
            failures.append(
                f"renal function fails both {limits['creatinine']['basis']} and "
                f"{limits['creatinine_clearance']['basis']}"
            )
        else:
            absent.append(f"{label('creatinine')} or {label('creatinine_clearance')}")
    if failures:
        return CriterionOutcome.FAIL, "Inadequate organ function: " + "; ".join(failures) + "."
    if absent:
        return missing(absent)
    return CriterionOutcome.PASS, "All screening labs within the protocol limits."


def _hbv(ctx: Context) -> list[tuple[CriterionOutcome, str]]:
    """IN10, hepatitis B: with HBsAg or HBcAb positive, HBV DNA below the limit and effective
    anti-HBV therapy throughout."""
    hbsag, hbcab = ctx.value("hbsag"), ctx.value("hbcab")
    dna, antiviral = ctx.value("hbv_dna_iu_ml"), ctx.value("anti_hbv_therapy")
    if Serology.POSITIVE not in (hbsag, hbcab):
        if hbsag and hbcab:
            return [(CriterionOutcome.PASS, "HBsAg and HBcAb negative.")]
        return [missing(ctx.unanswered("hbsag", "hbcab"))]
    parts = []
    limit = ctx.protocol["hbv_dna_below_iu_ml"]
    if dna is None:
        parts.append(missing([label("hbv_dna_iu_ml") + " (HBsAg or HBcAb positive)"]))
    elif dna >= limit:
        parts.append((CriterionOutcome.FAIL, f"HBV DNA {dna} IU/mL; must be below {limit} IU/mL."))
    else:
        parts.append((CriterionOutcome.PASS, f"HBV DNA {dna} IU/mL (< {limit})."))
    if antiviral is None:
        parts.append(missing([label("anti_hbv_therapy")]))
    elif not antiviral:
        parts.append(
            (
                CriterionOutcome.FAIL,
                "HBV marker positive without effective anti-HBV therapy throughout.",
            )
        )
    else:
        parts.append((CriterionOutcome.PASS, "On effective anti-HBV therapy throughout."))
    return parts


def _hcv(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN10, hepatitis C: anti-HCV negative, or positive with HCV RNA at most the limit."""
    anti_hcv, rna = ctx.value("anti_hcv"), ctx.value("hcv_rna_copies_ml")
    if not anti_hcv:
        return missing([label("anti_hcv")])
    if anti_hcv != Serology.POSITIVE:
        return CriterionOutcome.PASS, "Anti-HCV negative."
    limit = ctx.protocol["hcv_rna_max_copies_ml"]
    if rna is None:
        return missing([label("hcv_rna_copies_ml") + " (anti-HCV positive)"])
    if rna > limit:
        return (
            CriterionOutcome.FAIL,
            f"Anti-HCV positive with HCV RNA {rna} copies/mL (> {limit}).",
        )
    return CriterionOutcome.PASS, f"Anti-HCV positive, HCV RNA {rna} copies/mL (≤ {limit})."


def in10_hepatitis(ctx: Context):
    parts = [*_hbv(ctx), _hcv(ctx)]
    # Co-infection: HBsAg positive and HCV RNA positive. HCV RNA is asked for only when anti-HCV
    # is positive; with anti-HCV negative the subject is taken as HCV RNA negative.
    rna = ctx.value("hcv_rna_copies_ml")
    if (
        ctx.value("hbsag") == Serology.POSITIVE
        and rna is not None
        and rna > ctx.protocol["hcv_rna_positive_above_copies_ml"]
    ):
        parts.append((CriterionOutcome.FAIL, "HBV/HCV co-infection (HBsAg and HCV RNA positive)."))
    return combine(parts)


def _male_contraception(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN11 for a man: contraception agreed when the partner is of childbearing potential."""
    partner = ctx.value("partner_childbearing_potential")
    agreed = ctx.value("contraception_agreed")
    if partner is None:
        return missing([label("partner_childbearing_potential")])
    if not partner:
        return CriterionOutcome.PASS, "Male subject; partner not of childbearing potential."
    if agreed is None:
        return missing([label("contraception_agreed")])
    if agreed:
        return (
            CriterionOutcome.PASS,
            "Male subject with a partner of childbearing potential agrees to contraception.",
        )
    return (
        CriterionOutcome.FAIL,
        "Partner of childbearing potential and no agreement to contraception.",
    )


def _pregnancy_test(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN11 for a woman of childbearing potential: a negative serum pregnancy test within the
    window before the reference date."""
    result, tested = ctx.value("pregnancy_test_result"), ctx.value("pregnancy_test_date")
    window = ctx.protocol["pregnancy_test_window_days"]
    if result == Serology.POSITIVE:
        return CriterionOutcome.FAIL, "Positive serum pregnancy test."
    if not result or tested is None:
        return missing(ctx.unanswered("pregnancy_test_date", "pregnancy_test_result"))
    if ctx.reference_date is None:
        return missing(["planned randomization date (the test window is counted from it)"])
    days = (ctx.reference_date - tested).days
    if 0 <= days <= window:
        return (
            CriterionOutcome.PASS,
            f"Negative serum pregnancy test {days} day(s) before the reference date.",
        )
    if days < 0:
        return (
            CriterionOutcome.FAIL,
            "The pregnancy test is dated after the reference date: it must be "
            f"done within {window} days before randomization.",
        )
    return (
        CriterionOutcome.FAIL,
        f"The serum pregnancy test ({tested:%Y-%m-%d}) is {days} days before "
        f"the reference date {ctx.reference_date:%Y-%m-%d}; it must be within "
        f"{window} days: repeat it.",
    )


def _contraception_agreed(ctx: Context) -> tuple[CriterionOutcome, str]:
    agreed = ctx.value("contraception_agreed")
    if agreed is None:
        return missing([label("contraception_agreed")])
    if not agreed:
        return CriterionOutcome.FAIL, "No agreement to reliable contraception."
    return CriterionOutcome.PASS, "Agrees to reliable contraception."


def in11_pregnancy(ctx: Context):
    if ctx.subject.sex == "M":
        return _male_contraception(ctx)
    wocbp = ctx.value("childbearing_potential")
    if wocbp is None:
        return missing([label("childbearing_potential")])
    if not wocbp:
        return CriterionOutcome.PASS, "Female subject not of childbearing potential."
    return combine([_pregnancy_test(ctx), _contraception_agreed(ctx)])


def in12_consent(ctx: Context):
    s = ctx.subject
    if s.consent_date is None:
        return missing(["informed consent"])
    compliance = ctx.value("good_compliance_expected")
    if compliance is None:
        return missing([label("good_compliance_expected")])
    if ctx.reference_date is not None and s.consent_date > ctx.reference_date:
        return CriterionOutcome.FAIL, "Informed consent is dated after the reference date."
    if not compliance:
        return CriterionOutcome.FAIL, "The investigator does not expect good compliance."
    return (
        CriterionOutcome.PASS,
        f"Written informed consent signed {s.consent_date:%Y-%m-%d} (version {s.consent_version}).",
    )


# --- exclusion checks ---------------------------------------------------------------------------


def ex01_histology(ctx: Context):
    histology = ctx.value("excluded_histology")
    if not histology:
        return missing([label("excluded_histology")])
    if histology == ExcludedHistology.NONE:
        return CriterionOutcome.PASS, "No excluded histology known."
    return CriterionOutcome.FAIL, f"Known {ExcludedHistology(histology).label.lower()}."


def ex02_other_malignancy(ctx: Context):
    other = ctx.value("other_malignancy_5y")
    if other is None:
        return missing([label("other_malignancy_5y")])
    if not other:
        return CriterionOutcome.PASS, "No other malignancy within 5 years."
    cured = ctx.value("other_malignancy_cured_in_situ")
    if cured is None:
        return missing([label("other_malignancy_cured_in_situ")])
    if cured:
        return (
            CriterionOutcome.PASS,
            "Other malignancy within 5 years, a cured localized one (allowed).",
        )
    return (
        CriterionOutcome.FAIL,
        "Other malignancy within 5 years that is not an allowed cured localized one.",
    )


def ex03_recent_therapy(ctx: Context):
    p = ctx.protocol
    parts = [
        dated_exclusion(
            ctx,
            "local_therapy_received",
            "last_local_therapy_date",
            "hepatic surgery, local or investigational therapy",
            days=p["local_therapy_window_days"],
        ),
        dated_exclusion(
            ctx,
            "bone_radiotherapy_received",
            "last_bone_radiotherapy_date",
            "palliative bone radiotherapy",
            days=p["bone_radiotherapy_window_days"],
        ),
        dated_exclusion(
            ctx,
            "chinese_medicine_received",
            "last_chinese_medicine_date",
            "anti-liver-cancer Chinese medicine",
            days=p["chinese_medicine_window_days"],
        ),
    ]
    unrecovered = ctx.value("treatment_toxicity_unrecovered")
    if unrecovered is None:
        parts.append(missing([label("treatment_toxicity_unrecovered")]))
    elif unrecovered:
        parts.append(
            (
                CriterionOutcome.FAIL,
                "Not recovered to grade ≤ 1 from side effects of prior treatment.",
            )
        )
    else:
        parts.append((CriterionOutcome.PASS, "Recovered from side effects of prior treatment."))
    return combine(parts)


def ex06_gi_hemorrhage(ctx: Context):
    parts = [
        dated_exclusion(
            ctx,
            "gi_hemorrhage_history",
            "last_gi_hemorrhage_date",
            "GI hemorrhage",
            months=ctx.protocol["gi_hemorrhage_window_months"],
        )
    ]
    risk, red = ctx.value("high_bleeding_risk"), ctx.value("red_sign_history")
    if red:
        parts.append((CriterionOutcome.FAIL, "History of red sign at gastroscopy."))
    elif risk is None:
        parts.append(missing([label("high_bleeding_risk")]))
    elif risk and red is None:
        parts.append(
            missing([label("red_sign_history") + " (gastroscopy needed: high bleeding risk)"])
        )
    else:
        parts.append(
            (
                CriterionOutcome.PASS,
                "No red sign at gastroscopy." if red is False else "No high bleeding risk.",
            )
        )
    return combine(parts)


def ex11_major_surgery(ctx: Context):
    return dated_exclusion(
        ctx,
        "major_surgery_received",
        "last_major_surgery_date",
        "medium or major surgery",
        days=ctx.protocol["major_surgery_window_days"],
    )


def ex14_live_vaccine(ctx: Context):
    return dated_exclusion(
        ctx,
        "live_vaccine_received",
        "last_live_vaccine_date",
        "live vaccine",
        days=ctx.protocol["live_vaccine_window_days"],
    )


def ex22_investigator(ctx: Context):
    value = ctx.value("investigator_judges_unsuitable")
    if value is None:
        return missing([label("investigator_judges_unsuitable")])
    if value:
        return (
            CriterionOutcome.FAIL,
            f"Unsuitable in the investigator's view: {ctx.value('unsuitable_reason')}",
        )
    return CriterionOutcome.PASS, "Not otherwise unsuitable in the investigator's view."


# --- the registry -------------------------------------------------------------------------------

CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "IN01",
        INCLUSION,
        "Age of 18-75 years (inclusive), male or female.",
        ("subject.date_of_birth", "subject.age_at_screening", "subject.consent_date"),
        in01_age,
    ),
    Criterion(
        "IN02",
        INCLUSION,
        "Histological or cytological diagnosis of HCC or clinical diagnosis of HCC in cirrhotic "
        "patients per the AASLD guideline.",
        ("diagnosis_basis", "cirrhosis"),
        in02_diagnosis,
    ),
    Criterion(
        "IN03",
        INCLUSION,
        "BCLC stage B or C, and unsuitable for radical surgical and/or local therapy, or has "
        "progressed following surgical and/or local therapy.",
        ("bclc_stage", "unsuitable_for_radical_therapy", "progressed_after_local_therapy"),
        in03_bclc,
    ),
    Criterion(
        "IN04",
        INCLUSION,
        "No previous systemic therapy for HCC (chemotherapy, anti-angiogenic or other molecular "
        "targeted therapy, immunotherapy containing CTLA-4, PD-1/PD-L1 antibodies).",
        ("prior_systemic_therapy", "prior_therapies"),
        in04_no_systemic,
    ),
    Criterion(
        "IN05",
        INCLUSION,
        "≥ 1 measurable lesion per RECIST v1.1; the target lesion has not been treated locally, or "
        "is in a previously treated area but determined as PD radiologically.",
        ("measurable_lesions", "target_lesion_locally_treated", "target_lesion_progressed"),
        in05_measurable,
    ),
    Criterion(
        "IN06",
        INCLUSION,
        "Child-Pugh class A, with no history of hepatic encephalopathy.",
        (*CHILD_PUGH_FIELDS, "hepatic_encephalopathy_history"),
        in06_child_pugh,
    ),
    Criterion("IN07", INCLUSION, "ECOG performance status 0 or 1.", ("ecog",), in07_ecog),
    Criterion(
        "IN08",
        INCLUSION,
        "Predicted life expectancy ≥ 12 weeks.",
        ("life_expectancy_weeks",),
        in08_life_expectancy,
    ),
    Criterion(
        "IN09",
        INCLUSION,
        "Adequate hematologic and end-organ function (limits: protocol settings).",
        ("lab_date", *LAB_FIELDS),
        in09_labs,
        windowed=True,
    ),
    Criterion(
        "IN10",
        INCLUSION,
        "If HBsAg (+) and/or HBcAb (+), HBV DNA < 500 IU/mL and effective anti-HBV therapy "
        "throughout the study; anti-HCV positive with HCV RNA > 10³ copies/mL excluded; HBV/HCV "
        "co-infection (HBsAg and HCV RNA positive) excluded.",
        ("hbsag", "hbcab", "hbv_dna_iu_ml", "anti_hbv_therapy", "anti_hcv", "hcv_rna_copies_ml"),
        in10_hepatitis,
    ),
    Criterion(
        "IN11",
        INCLUSION,
        "Women of childbearing potential: negative serum pregnancy test within 7 days before "
        "randomization and reliable contraception during the trial and 60 days after the last "
        "dose; men with partners of childbearing potential agree to reliable contraception.",
        (
            "subject.sex",
            "childbearing_potential",
            "pregnancy_test_date",
            "pregnancy_test_result",
            "partner_childbearing_potential",
            "contraception_agreed",
        ),
        in11_pregnancy,
        windowed=True,
    ),
    Criterion(
        "IN12",
        INCLUSION,
        "Voluntary participation, written informed consent signed, good compliance.",
        ("subject.consent_date", "good_compliance_expected"),
        in12_consent,
    ),
    Criterion(
        "EX01",
        EXCLUSION,
        "Known cholangiocellular carcinoma (ICC) or mixed cell carcinoma, sarcomatoid HCC and "
        "hepatic fibrolamellar carcinoma.",
        ("excluded_histology",),
        ex01_histology,
    ),
    Criterion(
        "EX02",
        EXCLUSION,
        "Malignancy other than HCC within 5 years prior to screening, except cured localized "
        "malignancies (cervical carcinoma in situ, skin basal cell carcinoma, prostate carcinoma "
        "in situ).",
        ("other_malignancy_5y", "other_malignancy_cured_in_situ"),
        ex02_other_malignancy,
    ),
    Criterion(
        "EX03",
        EXCLUSION,
        "Hepatic surgery, local therapy or investigational treatment for HCC within 4 weeks, "
        "palliative radiotherapy for bone metastases within 2 weeks, or anti-liver-cancer Chinese "
        "medicine within 2 weeks prior to randomization; or not recovered (to CTCAE ≤ grade 1, "
        "alopecia apart) from side effects of any such treatment.",
        (
            "local_therapy_received",
            "last_local_therapy_date",
            "bone_radiotherapy_received",
            "last_bone_radiotherapy_date",
            "chinese_medicine_received",
            "last_chinese_medicine_date",
            "treatment_toxicity_unrecovered",
        ),
        ex03_recent_therapy,
        windowed=True,
    ),
    Criterion(
        "EX04",
        EXCLUSION,
        "Prior other anti-PD-1 antibody therapy or other PD-1/PD-L1 immunotherapy.",
        ("prior_anti_pd1_therapy",),
        simple_exclusion(
            "prior_anti_pd1_therapy",
            "Prior PD-1/PD-L1 immunotherapy.",
            "No prior PD-1/PD-L1 immunotherapy.",
        ),
    ),
    Criterion(
        "EX05",
        EXCLUSION,
        "Uncontrolled pericardial or pleural effusion, or clinically obvious moderate/severe "
        "pleural effusion at screening.",
        ("uncontrolled_effusion",),
        simple_exclusion(
            "uncontrolled_effusion",
            "Uncontrolled or clinically obvious effusion.",
            "No uncontrolled effusion.",
        ),
    ),
    Criterion(
        "EX06",
        EXCLUSION,
        "GI hemorrhage within 6 months prior to randomization; history of red sign at gastroscopy "
        "(gastroscopy required for portal hypertension with high bleeding risk).",
        (
            "gi_hemorrhage_history",
            "last_gi_hemorrhage_date",
            "high_bleeding_risk",
            "red_sign_history",
        ),
        ex06_gi_hemorrhage,
        windowed=True,
    ),
    Criterion(
        "EX07",
        EXCLUSION,
        "Grade ≥ 3 (CTCAE v5.0) GI or non-GI fistula at present.",
        ("fistula_grade3",),
        simple_exclusion(
            "fistula_grade3", "Grade ≥ 3 fistula at present.", "No grade ≥ 3 fistula."
        ),
    ),
    Criterion(
        "EX08",
        EXCLUSION,
        "Tumor thrombus in the portal vein main trunk involving the contralateral branch or the "
        "superior mesenteric vein; tumor thrombus in the inferior vena cava.",
        ("excluded_tumor_thrombus",),
        simple_exclusion(
            "excluded_tumor_thrombus",
            "Excluded tumor thrombus present.",
            "No excluded tumor thrombus.",
        ),
    ),
    Criterion(
        "EX09",
        EXCLUSION,
        "Serious cardiovascular and cerebrovascular diseases.",
        ("serious_cardiovascular_disease",),
        simple_exclusion(
            "serious_cardiovascular_disease",
            "Serious cardiovascular or cerebrovascular disease.",
            "No serious cardiovascular or cerebrovascular disease.",
        ),
    ),
    Criterion(
        "EX10",
        EXCLUSION,
        "Major bleeding and coagulation disorders or other obvious evidence of bleeding tendency.",
        ("bleeding_disorder",),
        simple_exclusion(
            "bleeding_disorder",
            "Bleeding or coagulation disorder.",
            "No bleeding or coagulation disorder.",
        ),
    ),
    Criterion(
        "EX11",
        EXCLUSION,
        "Medium to large surgery within 4 weeks prior to randomization (diagnostic biopsy apart).",
        ("major_surgery_received", "last_major_surgery_date"),
        ex11_major_surgery,
        windowed=True,
    ),
    Criterion(
        "EX12",
        EXCLUSION,
        "Central nervous system metastases.",
        ("cns_metastases",),
        simple_exclusion("cns_metastases", "CNS metastases.", "No CNS metastases."),
    ),
    Criterion(
        "EX13",
        EXCLUSION,
        "Serious, non-healing or dehiscing wound, active ulcer or untreated bone fracture.",
        ("non_healing_wound",),
        simple_exclusion(
            "non_healing_wound",
            "Non-healing wound, active ulcer or untreated fracture.",
            "No non-healing wound, active ulcer or untreated fracture.",
        ),
    ),
    Criterion(
        "EX14",
        EXCLUSION,
        "Live vaccine within 30 days prior to randomization.",
        ("live_vaccine_received", "last_live_vaccine_date"),
        ex14_live_vaccine,
        windowed=True,
    ),
    Criterion(
        "EX15",
        EXCLUSION,
        "Active autoimmune disease requiring systemic treatment in the past 2 years (replacement "
        "therapy, inhaled or topical corticosteroids allowed).",
        ("active_autoimmune_disease",),
        simple_exclusion(
            "active_autoimmune_disease",
            "Active autoimmune disease needing systemic treatment.",
            "No active autoimmune disease needing systemic treatment.",
        ),
    ),
    Criterion(
        "EX16",
        EXCLUSION,
        "History of interstitial lung disease or non-infectious pneumonitis (unless radiation-"
        "induced), or of active tuberculosis.",
        ("ild_pneumonitis_or_tb",),
        simple_exclusion(
            "ild_pneumonitis_or_tb",
            "Interstitial lung disease, pneumonitis or active TB.",
            "No interstitial lung disease, pneumonitis or active TB.",
        ),
    ),
    Criterion(
        "EX17",
        EXCLUSION,
        "Serious acute or chronic infection requiring systemic antibacterial, antifungal or "
        "antiviral therapy at screening (viral hepatitis apart).",
        ("serious_infection",),
        simple_exclusion(
            "serious_infection",
            "Serious infection needing systemic therapy.",
            "No serious infection needing systemic therapy.",
        ),
    ),
    Criterion(
        "EX18",
        EXCLUSION,
        "Known history of HIV infection.",
        ("hiv",),
        simple_exclusion("hiv", "Known HIV infection.", "No known HIV infection."),
    ),
    Criterion(
        "EX19",
        EXCLUSION,
        "Prior allogeneic stem cell or solid organ transplantation.",
        ("transplant",),
        simple_exclusion(
            "transplant",
            "Prior allogeneic transplantation.",
            "No prior allogeneic transplantation.",
        ),
    ),
    Criterion(
        "EX20",
        EXCLUSION,
        "Inability to swallow tablets, malabsorption syndrome or any condition affecting GI "
        "absorption.",
        ("gi_absorption_problem",),
        simple_exclusion(
            "gi_absorption_problem",
            "Cannot take oral tablets reliably.",
            "Can swallow and absorb tablets.",
        ),
    ),
    Criterion(
        "EX21",
        EXCLUSION,
        "Known serious allergy to any monoclonal antibody or targeted anti-angiogenic drug.",
        ("antibody_allergy",),
        simple_exclusion(
            "antibody_allergy",
            "Serious allergy to an antibody or anti-angiogenic drug.",
            "No serious allergy to antibodies or anti-angiogenic drugs.",
        ),
    ),
    Criterion(
        "EX22",
        EXCLUSION,
        "Other unsuitable subjects as per the investigators.",
        ("investigator_judges_unsuitable", "unsuitable_reason"),
        ex22_investigator,
    ),
)

BY_CODE = {c.code: c for c in CRITERIA}
assert len([c for c in CRITERIA if c.kind == INCLUSION]) == 12
assert len([c for c in CRITERIA if c.kind == EXCLUSION]) == 22
