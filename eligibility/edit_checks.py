"""The edit checks of the eligibility CRF that need no CRF above it (the planned randomization
date). The checks against the randomization (the windows of the tests, the stratification) live
in ``randomization.edit_checks``. Declared in ``eligibility.contributions``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F

from core.edit_checks import (
    EditCheck,
    RecordRows,
    Scope,
    Severity,
    days_between,
    edit_check_settings,
)
from core.site_time import SiteDate
from subjects.models import SubjectStatus

from .models import EligibilityAssessment

# The eligibility CRF (also checked against the randomization, in ``randomization.edit_checks``).
ASSESSMENT_ROWS = RecordRows(EligibilityAssessment, "eligibility")


def _planned_randomization_far_off(scope: Scope):
    days = edit_check_settings()["planned_randomization_max_days"]
    rows = (
        ASSESSMENT_ROWS.narrowed(scope)
        .filter(subject__status=SubjectStatus.SCREENING, planned_randomization_date__isnull=False)
        .annotate(
            saved_on=SiteDate("updated", "subject__site"),  # the planned date is a site date too
            gap=days_between(F("planned_randomization_date"), F("saved_on")),
        )
        .filter(gap__gt=timedelta(days=days))
        .values(*ASSESSMENT_ROWS.columns, "planned_randomization_date", "saved_on")
    )
    for row in rows:
        yield ASSESSMENT_ROWS.violation(
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
