"""The edit checks of the survival CRFs (joined to the study's by ``queries.checks``): the date
of death against the subject's status, the fatal adverse events and the follow-up contacts.

Each finder is one set-wise query (``core.edit_checks``). The services refuse most of these at
entry; the checks find what a later change elsewhere broke (a fatal AE recorded or corrected
after the end of study, a status corrected, a contact corrected).
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q

from adverse_events.models import AdverseEvent, AeOutcome
from core.edit_checks import EditCheck, RecordRows, Scope, Severity
from subjects.models import SubjectStatus

from .models import EndOfStudy, EndOfStudyReason, SurvivalFollowUp

EOS = RecordRows(EndOfStudy, "end of study")
FOLLOW_UP = RecordRows(
    SurvivalFollowUp,
    lambda row: f"survival contact {row['contact_number']}",
    extra=("contact_number",),
)


def _death_date_differs_from_the_status(scope: Scope):
    rows = (
        EOS.narrowed(scope)
        .filter(death_date__isnull=False)
        .filter(
            ~Q(subject__status=SubjectStatus.DIED)
            | Q(subject__status_date__isnull=True)
            | ~Q(subject__status_date=F("death_date"))
        )
        .values(*EOS.columns, "death_date", "subject__status", "subject__status_date")
    )
    for row in rows:
        status = SubjectStatus(row["subject__status"]).label.lower()
        when = row["subject__status_date"]
        yield EOS.violation(
            row,
            "death_date",
            f"The end of study gives a death on {row['death_date']:%Y-%m-%d}, but the subject's "
            f"status is {status}" + (f" since {when:%Y-%m-%d}" if when else "") + ".",
            {
                "death_date": row["death_date"],
                "status": row["subject__status"],
                "status_date": when,
            },
        )


def _death_date_differs_from_a_fatal_ae(scope: Scope):
    fatal_elsewhere = (
        AdverseEvent.objects.filter(subject=OuterRef("subject"), death_date__isnull=False)
        .filter(Q(grade=5) | Q(outcome=AeOutcome.FATAL))
        .exclude(death_date=OuterRef("death_date"))
    )
    rows = (
        EOS.narrowed(scope)
        .filter(death_date__isnull=False)
        .filter(Exists(fatal_elsewhere))
        .values(*EOS.columns, "death_date")
    )
    for row in rows:
        yield EOS.violation(
            row,
            "death_date",
            f"The date of death ({row['death_date']:%Y-%m-%d}) differs from the date of death "
            "of a fatal (grade 5) adverse event: correct one of them.",
            {"death_date": row["death_date"]},
        )


def _death_without_a_death_date(scope: Scope):
    rows = (
        EOS.narrowed(scope)
        .filter(end_reason=EndOfStudyReason.DEATH, death_date__isnull=True)
        .values(*EOS.columns, "end_reason")
    )
    for row in rows:
        yield EOS.violation(
            row,
            "death_date",
            "The study ended by death but the date of death is missing.",
            {"end_reason": row["end_reason"], "death_date": None},
        )


def _alive_after_death(scope: Scope):
    died_status = Q(subject__status=SubjectStatus.DIED) & Q(
        subject__status_date__lt=F("last_known_alive_date")
    )
    died_eos = Q(subject__end_of_study__death_date__lt=F("last_known_alive_date"))
    rows = (
        FOLLOW_UP.narrowed(scope)
        .filter(died_status | died_eos)
        .values(
            *FOLLOW_UP.columns,
            "last_known_alive_date",
            "subject__status_date",
            "subject__end_of_study__death_date",
        )
    )
    for row in rows:
        death = row["subject__end_of_study__death_date"] or row["subject__status_date"]
        yield FOLLOW_UP.violation(
            row,
            "last_known_alive_date",
            f"The last known alive date ({row['last_known_alive_date']:%Y-%m-%d}) is after the "
            f"date of death ({death:%Y-%m-%d}).",
            {"last_known_alive_date": row["last_known_alive_date"], "death_date": death},
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "SURV-001",
        "Date of death at end of study differs from the subject's status",
        EndOfStudy,
        ("death_date",),
        Severity.ERROR,
        _death_date_differs_from_the_status,
    ),
    EditCheck(
        "SURV-002",
        "Date of death at end of study differs from a fatal adverse event's",
        EndOfStudy,
        ("death_date",),
        Severity.ERROR,
        _death_date_differs_from_a_fatal_ae,
    ),
    EditCheck(
        "SURV-003",
        "End of study by death without a date of death",
        EndOfStudy,
        ("death_date",),
        Severity.ERROR,
        _death_without_a_death_date,
    ),
    EditCheck(
        "SURV-004",
        "Last known alive date after the date of death",
        SurvivalFollowUp,
        ("last_known_alive_date",),
        Severity.ERROR,
        _alive_after_death,
    ),
)
