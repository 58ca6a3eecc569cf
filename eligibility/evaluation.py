"""The evaluation of an assessment: every criterion and the overall result (a read: what the
pages show, what the sign-off and the randomization check)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from . import settings as elig_settings
from .criteria import CRITERIA, ChildPugh, Context, CriterionOutcome, CriterionResult, child_pugh
from .models import STRATIFICATION_FIELDS, EligibilityAssessment


class Status(StrEnum):
    ELIGIBLE = "eligible"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"

    @property
    def label(self) -> str:
        return {"eligible": "Eligible", "not_eligible": "Not eligible", "incomplete": "Incomplete"}[
            self.value
        ]


@dataclass(frozen=True)
class Evaluation:
    status: Status
    reference_date: date | None
    results: tuple[CriterionResult, ...]
    stratification_missing: tuple[str, ...]
    child_pugh: ChildPugh | None

    @property
    def is_eligible(self) -> bool:
        return self.status == Status.ELIGIBLE

    @property
    def failed(self) -> list[CriterionResult]:
        return [r for r in self.results if r.outcome == CriterionOutcome.FAIL]

    @property
    def missing(self) -> list[CriterionResult]:
        return [r for r in self.results if r.outcome == CriterionOutcome.MISSING]

    @property
    def inclusions(self) -> list[CriterionResult]:
        return [r for r in self.results if r.kind == "inclusion"]

    @property
    def exclusions(self) -> list[CriterionResult]:
        return [r for r in self.results if r.kind == "exclusion"]

    def result(self, code: str) -> CriterionResult:
        return next(r for r in self.results if r.code == code)

    def summary(self) -> str:
        """One sentence: the result and, if not eligible or incomplete, why."""
        on = f" (reference date {self.reference_date:%Y-%m-%d})" if self.reference_date else ""
        if self.status == Status.ELIGIBLE:
            return f"Eligible: all {len(self.results)} criteria pass{on}."
        if self.status == Status.NOT_ELIGIBLE:
            codes = ", ".join(r.code for r in self.failed)
            return f"Not eligible{on}: fails {codes}."
        parts = [r.code for r in self.missing] + [
            f"stratification ({', '.join(self.stratification_missing)})"
        ] * bool(self.stratification_missing)
        return f"Incomplete{on}: data missing for {', '.join(parts)}."


def evaluate_eligibility(
    assessment: EligibilityAssessment, on_date: date | None = None
) -> Evaluation:
    """Evaluate every criterion against ``on_date`` (default: the planned randomization date).

    Not eligible as soon as one criterion fails, even with other data missing (that is enough to
    confirm a screen failure); incomplete when none fails but data are missing, including the
    stratification factors the randomization will need; eligible otherwise.
    """
    ctx = Context(
        assessment=assessment,
        reference_date=on_date or assessment.planned_randomization_date,
        protocol=elig_settings.protocol(),
        lab_limits=elig_settings.lab_limits(),
        lab_max_age_days=elig_settings.lab_max_age_days(),
    )
    results = tuple(c.evaluate(ctx) for c in CRITERIA)
    strat_missing = tuple(
        str(EligibilityAssessment._meta.get_field(f).verbose_name)
        for f in STRATIFICATION_FIELDS
        if getattr(assessment, f) is None
    )
    if any(r.outcome == CriterionOutcome.FAIL for r in results):
        status = Status.NOT_ELIGIBLE
    elif strat_missing or any(r.outcome == CriterionOutcome.MISSING for r in results):
        status = Status.INCOMPLETE
    else:
        status = Status.ELIGIBLE
    return Evaluation(status, ctx.reference_date, results, strat_missing, child_pugh(assessment))
