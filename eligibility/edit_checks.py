"""The edit checks of the eligibility CRF that need no CRF above it (the planned randomization
date). The checks against the randomization (the windows of the tests, the stratification) live
in ``randomization.edit_checks``. Declared in ``eligibility.contributions``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F

from core.edit_checks import (
    EditCheck,
    Scope,
    Severity,
    Violation,
    days_between,
    edit_check_settings,
    record_label,
)
from core.site_time import SiteDate
from subjects.models import SubjectStatus

from .models import EligibilityAssessment

ASSESSMENT_ROW = ("pk", "subject_id", "subject__site_id", "subject__subject_identifier")


def assessment_violation(row: dict, field: str, message: str, values: dict) -> Violation:
    """A violation on the eligibility CRF of ``row`` (``ASSESSMENT_ROW``)."""
    return Violation(
        row["subject_id"],
        row["subject__site_id"],
        EligibilityAssessment,
        row["pk"],
        field,
        record_label(row["subject__subject_identifier"], "eligibility"),
        message,
        values,
    )


def _planned_randomization_far_off(scope: Scope):
    days = edit_check_settings()["planned_randomization_max_days"]
    rows = (
        scope.narrow(EligibilityAssessment.objects.all(), "subject")
        .filter(subject__status=SubjectStatus.SCREENING, planned_randomization_date__isnull=False)
        .annotate(
            saved_on=SiteDate("updated", "subject__site"),  # the planned date is a site date too
            gap=days_between(F("planned_randomization_date"), F("saved_on")),
        )
        .filter(gap__gt=timedelta(days=days))
        .values(*ASSESSMENT_ROW, "planned_randomization_date", "saved_on")
    )
    for row in rows:
        yield assessment_violation(
            row,
            "planned_randomization_date",
            f"The planned randomization date ({row['planned_randomization_date']:%Y-%m-%d}) is "
            f"more than {days} days after the CRF was saved ({row['saved_on']:%Y-%m-%d}): the "
            "screening windows will have run out.",
            {
                "planned_randomization_date": row["planned_randomization_date"],
                "saved_on": row["saved_on"],
            },
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "ELIG-002",
        "Planned randomization date too far after the CRF was saved",
        EligibilityAssessment,
        ("planned_randomization_date",),
        Severity.WARNING,
        _planned_randomization_far_off,
    ),
)
