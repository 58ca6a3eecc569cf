"""The edit checks of the adverse events: causality for the drugs of the arm, the SAE clock,
fatal events against the subject's status, duplicates, events ongoing after the study; and the
subject who died without a fatal event. Declared in ``adverse_events.contributions``.
"""

from __future__ import annotations

import operator
from functools import reduce

from django.db import models
from django.db.models import Case, Exists, Max, OuterRef, Q, When

from core.edit_checks import EditCheck, RecordRows, Scope, Severity
from randomization.arms import DRUGS_OF_ARM, Arm, drug_name
from randomization.edit_checks import drugs_outside_the_arm
from subjects.edit_checks import SUBJECT_ROWS
from subjects.models import Subject, SubjectStatus

from .models import AdverseEvent, AeCausality, AeOutcome
from .sae_clock import SaeClock


def _died_without_a_fatal_ae(scope: Scope):
    fatal = AdverseEvent.objects.filter(subject=OuterRef("pk")).filter(
        Q(grade=5) | Q(outcome=AeOutcome.FATAL)
    )
    rows = (
        SUBJECT_ROWS.narrowed(scope)
        .filter(status=SubjectStatus.DIED)
        .exclude(Exists(fatal))
        .values(*SUBJECT_ROWS.columns, "status_date")
    )
    for row in rows:
        yield SUBJECT_ROWS.violation(
            row,
            "status",
            "The subject died but no adverse event is fatal (grade 5): record the event that led "
            "to death, or confirm a death unrelated to any adverse event.",
            {"status": SubjectStatus.DIED, "status_date": row["status_date"]},
        )


EVENTS = RecordRows(AdverseEvent, lambda row: f"AE {row['ae_number']}", extra=("ae_number",))
CAUSALITIES = RecordRows(
    AeCausality,
    lambda row: f"AE {row['adverse_event__ae_number']} causality ({drug_name(row['drug'])})",
    subject_path="adverse_event__subject",
    extra=("drug", "adverse_event__ae_number"),
)


def _drug_flags() -> dict[str, Max]:
    """Per study drug: 1 when the event has its causality, else 0 (an aggregate over the event's
    causality rows: one outer join and a grouping, where one EXISTS per drug and event would probe
    the causalities row by row)."""
    return {
        f"has_{drug}": Max(
            Case(When(causalities__drug=drug, then=1), default=0),
            output_field=models.IntegerField(),
        )
        for drug in sorted({d for drugs in DRUGS_OF_ARM.values() for d in drugs})
    }


def _severe_ae_without_causality(scope: Scope):
    flags = _drug_flags()
    lacking = reduce(
        operator.or_,
        (
            Q(subject__allocation__arm=arm)
            & reduce(operator.or_, (Q(**{f"has_{drug}": 0}) for drug in drugs))
            for arm, drugs in DRUGS_OF_ARM.items()
        ),
    )
    rows = (
        EVENTS.narrowed(scope)
        .filter(grade__gte=3, subject__allocation__isnull=False)
        .values(*EVENTS.columns, "grade", "subject__allocation__arm")
        .annotate(**flags)
        .filter(lacking)
    )
    for row in rows:
        missing = [
            drug for drug in DRUGS_OF_ARM[row["subject__allocation__arm"]] if not row[f"has_{drug}"]
        ]
        yield EVENTS.violation(
            row,
            "",
            f"Grade {row['grade']} event without the causality to "
            f"{' and '.join(drug_name(d) for d in missing)}: give the causality and the action "
            "taken for every study drug of the subject's arm.",
            {"grade": row["grade"], "missing": sorted(missing)},
        )


_causality_for_a_drug_not_taken = drugs_outside_the_arm(
    CAUSALITIES, "A causality is recorded for {drug}, which the subject does not take: {taken}."
)


def _sae_not_reported_in_time(scope: Scope):
    rows = (
        EVENTS.narrowed(scope)
        .in_sae_clock(SaeClock.OVERDUE, SaeClock.REPORTED_LATE, now=scope.now)
        .values(*EVENTS.columns, "site_aware_at", "sae_reported_at")
    )
    for row in rows:
        reported = row["sae_reported_at"]
        when = f"was reported at {reported:%Y-%m-%d %H:%M} UTC" if reported else "is not reported"
        yield EVENTS.violation(
            row,
            "sae_reported_at",
            f"The serious event {when}, more than 24 hours after the site became aware "
            f"({row['site_aware_at']:%Y-%m-%d %H:%M} UTC): give the report time, or explain "
            "the delay.",
            {"site_aware_at": row["site_aware_at"], "sae_reported_at": reported},
        )


def _fatal_ae_but_alive(scope: Scope):
    rows = (
        EVENTS.narrowed(scope)
        .filter(grade=5)
        .exclude(subject__status=SubjectStatus.DIED)
        .values(*EVENTS.columns, "subject__status")
    )
    for row in rows:
        yield EVENTS.violation(
            row,
            "grade",
            f"The event is grade 5 (fatal) but the subject's status is "
            f"{SubjectStatus(row['subject__status']).label.lower()}.",
            {"grade": 5, "status": row["subject__status"]},
        )


def _immune_related_on_sorafenib(scope: Scope):
    rows = (
        EVENTS.narrowed(scope)
        .filter(immune_related=True, subject__allocation__arm=Arm.B)
        .values(*EVENTS.columns)
    )
    for row in rows:
        yield EVENTS.violation(
            row,
            "immune_related",
            "The event is flagged immune-related, but the subject takes sorafenib (no immune "
            "checkpoint inhibitor): confirm.",
            {"immune_related": True, "arm": Arm.B},
        )


def _same_term_same_onset(scope: Scope):
    earlier = AdverseEvent.objects.filter(
        subject=OuterRef("subject"),
        term=OuterRef("term"),
        onset_date=OuterRef("onset_date"),
        ae_number__lt=OuterRef("ae_number"),
    )
    rows = (
        EVENTS.narrowed(scope)
        .filter(Exists(earlier))
        .values(*EVENTS.columns, "term__term", "onset_date")
    )
    for row in rows:
        yield EVENTS.violation(
            row,
            "term",
            f"{row['term__term']} with onset {row['onset_date']:%Y-%m-%d} is recorded twice for "
            "this subject: a duplicate?",
            {"term": row["term__term"], "onset_date": row["onset_date"]},
        )


ENDED_STUDY = (SubjectStatus.COMPLETED, SubjectStatus.WITHDRAWN)


def _ongoing_after_the_study_ended(scope: Scope):
    rows = (
        EVENTS.narrowed(scope)
        .filter(ongoing=True, subject__status__in=ENDED_STUDY)
        .values(*EVENTS.columns, "subject__status", "subject__status_date")
    )
    for row in rows:
        yield EVENTS.violation(
            row,
            "ongoing",
            f"The event is ongoing but the subject's study ended "
            f"({SubjectStatus(row['subject__status']).label.lower()} on "
            f"{row['subject__status_date']:%Y-%m-%d}): give the end date or the outcome at the "
            "end of the study.",
            {"ongoing": True, "status": row["subject__status"]},
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "SUBJ-003",
        "Subject died but no adverse event is fatal",
        Subject,
        ("status",),
        Severity.ERROR,
        _died_without_a_fatal_ae,
    ),
    EditCheck(
        "AE-001",
        "Grade 3 or higher AE without causality for every drug of the arm",
        AdverseEvent,
        (),
        Severity.ERROR,
        _severe_ae_without_causality,
    ),
    EditCheck(
        "AE-002",
        "Causality recorded for a drug not in the subject's arm",
        AeCausality,
        ("drug",),
        Severity.ERROR,
        _causality_for_a_drug_not_taken,
    ),
    EditCheck(
        "AE-003",
        "Serious AE not reported within 24 hours of site awareness",
        AdverseEvent,
        ("sae_reported_at",),
        Severity.ERROR,
        _sae_not_reported_in_time,
    ),
    EditCheck(
        "AE-004",
        "Grade 5 AE while the subject is not recorded as died",
        AdverseEvent,
        ("grade",),
        Severity.ERROR,
        _fatal_ae_but_alive,
    ),
    EditCheck(
        "AE-005",
        "Immune-related AE in the sorafenib arm (to confirm)",
        AdverseEvent,
        ("immune_related",),
        Severity.WARNING,
        _immune_related_on_sorafenib,
    ),
    EditCheck(
        "AE-006",
        "The same term with the same onset twice for one subject",
        AdverseEvent,
        ("term",),
        Severity.WARNING,
        _same_term_same_onset,
    ),
    EditCheck(
        "AE-007",
        "AE ongoing after the subject ended the study",
        AdverseEvent,
        ("ongoing",),
        Severity.ERROR,
        _ongoing_after_the_study_ended,
    ),
)
