"""The edit checks of the subject record that need no CRF above it: a subject left in
screening, and a status dated before the previous one. The checks that compare the subject
with a CRF of an app above (randomization, adverse events) live in that app. Declared in
``subjects.contributions``; the sweep and the query lifecycle are the queries app's.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Exists, OuterRef

from core.edit_checks import EditCheck, RecordRows, Scope, Severity, edit_check_settings

from .models import Subject, SubjectStatus

# The subject record (rows of pk, site_id, subject_identifier): the checks of the apps above
# that point at the subject use it too.
SUBJECT_ROWS = RecordRows(Subject, subject_path="")


def _screening_too_long(scope: Scope):
    days = edit_check_settings()["screening_max_days"]
    too_long = timedelta(days=days)
    rows = (
        SUBJECT_ROWS.narrowed(scope)
        .filter(status=SubjectStatus.SCREENING, consent_date__lt=scope.latest_today - too_long)
        .annotate(site_today=scope.site_today("site"))
        .values(*SUBJECT_ROWS.columns, "consent_date", "site_today")
    )
    for row in rows:
        if row["consent_date"] >= row["site_today"] - too_long:
            continue  # not yet at its site
        yield SUBJECT_ROWS.violation(
            row,
            "status",
            f"The subject is still in screening more than {days} days after consent "
            f"({row['consent_date']:%Y-%m-%d}): randomize, or record the screen failure.",
            {"status": SubjectStatus.SCREENING, "consent_date": row["consent_date"]},
        )


def _status_date_before_the_previous_one(scope: Scope):
    history = Subject.history.model.objects.filter(
        id=OuterRef("pk"), status_date__gt=OuterRef("status_date")
    ).exclude(status=OuterRef("status"))
    rows = (
        SUBJECT_ROWS.narrowed(scope)
        .filter(status_date__isnull=False)
        .filter(Exists(history))
        .values(*SUBJECT_ROWS.columns, "status", "status_date")
    )
    for row in rows:
        yield SUBJECT_ROWS.violation(
            row,
            "status_date",
            f"The date of the status {SubjectStatus(row['status']).label.lower()} "
            f"({row['status_date']:%Y-%m-%d}) is before the date of the previous status.",
            {"status": row["status"], "status_date": row["status_date"]},
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "SUBJ-005",
        "Subject still in screening too long after consent",
        Subject,
        ("status",),
        Severity.WARNING,
        _screening_too_long,
    ),
    EditCheck(
        "SUBJ-006",
        "Status date before the previous status date",
        Subject,
        ("status_date",),
        Severity.ERROR,
        _status_date_before_the_previous_one,
    ),
)
