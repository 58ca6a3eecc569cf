"""The edit checks: a registry as data, like the eligibility criteria.

Each check has a stable code, a sentence a site coordinator understands, the model and field(s)
it points at, a severity, and a finder. A finder returns every violation **set-wise**: one
database query over the whole study, or over the subjects of a ``Scope``; Python only shapes the
rows the query returned (the violations), never loops over the study's records to judge them.

A violation names its record and field and carries the offending values (``values``, JSON): the
sweep keys a query on (check, record, field) and compares values to know whether a value a data
manager confirmed correct has changed since.

A later CRF declares its checks in its own app (``<app>/edit_checks.py``: ``CHECKS``, with the
types of ``core.edit_checks``); ``all_checks()`` joins them to these, with no change to the sweep,
the query pages or the exports.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from datetime import timedelta
from functools import reduce

from django.db import models
from django.db.models import (
    Case,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    When,
)
from django.db.models.functions import ExtractDay, ExtractMonth, ExtractYear

from adverse_events.models import AdverseEvent, AeCausality, AeOutcome
from adverse_events.sae_clock import SaeClock
from core.edit_checks import EditCheck, Scope, Severity, Violation
from core.errors import DomainError
from core.registry import collected
from core.site_time import SiteDate
from eligibility import settings as elig_settings
from eligibility.models import EligibilityAssessment, EligibilitySignature, SignatureKind
from randomization.arms import DRUGS_OF_ARM, Arm, drug_name
from randomization.models import Allocation
from randomization.selectors import RandomizationDate
from subjects.models import Subject, SubjectStatus

from .settings import edit_check_settings

# --- what a finder returns ---------------------------------------------------------------------


# --- shared expressions ------------------------------------------------------------------------


def _randomized_on(path: str = "allocation") -> RandomizationDate:
    """The randomization date (the site's date) of the subject reached by ``path`` to its
    allocation."""
    return RandomizationDate(path)


def _days_between(later, earlier) -> ExpressionWrapper:
    return ExpressionWrapper(later - earlier, output_field=DurationField())


def _label(identifier: str, what: str = "") -> str:
    return f"{identifier} {what}".strip()


def _ae_label(row: dict, prefix: str = "") -> str:
    return f"{row[prefix + 'subject__subject_identifier']} AE {row[prefix + 'ae_number']}"


# --- subjects ----------------------------------------------------------------------------------


def _subject_violation(row, field, message, values) -> Violation:
    """A violation on the subject record of ``row`` (pk, site_id, subject_identifier)."""
    identifier = row["subject_identifier"]
    return Violation(
        row["pk"], row["site_id"], Subject, row["pk"], field, identifier, message, values
    )


def _randomized_without_signature(scope: Scope):
    signed = EligibilitySignature.objects.filter(
        assessment=OuterRef("pk"), void=False, kind=SignatureKind.ELIGIBLE
    )
    rows = (
        scope.narrow(EligibilityAssessment.objects.all(), "subject")
        .filter(subject__allocation__isnull=False)
        .exclude(Exists(signed))
        .values("pk", "subject_id", "subject__site_id", "subject__subject_identifier")
    )
    for row in rows:
        yield Violation(
            row["subject_id"],
            row["subject__site_id"],
            EligibilityAssessment,
            row["pk"],
            "",
            _label(row["subject__subject_identifier"], "eligibility"),
            "The subject is randomized but the eligibility has no valid investigator signature "
            "(it was voided by a change): the investigator must review and sign again.",
            {"signed": False},
        )


def _age_at_consent_outside_the_protocol(scope: Scope):
    protocol = elig_settings.protocol()
    low, high = protocol["age_min"], protocol["age_max"]
    birthday_not_reached = Q(c_month__lt=F("b_month")) | Q(
        c_month=F("b_month"), c_day__lt=F("b_day")
    )
    rows = (
        scope.narrow(Subject.objects.all(), "pk")
        .filter(allocation__isnull=False, consent_date__isnull=False)
        .annotate(
            c_month=ExtractMonth("consent_date"),
            c_day=ExtractDay("consent_date"),
            b_month=ExtractMonth("date_of_birth"),
            b_day=ExtractDay("date_of_birth"),
        )
        .annotate(
            age=Case(
                When(date_of_birth__isnull=True, then=F("age_at_screening")),
                default=ExtractYear("consent_date")
                - ExtractYear("date_of_birth")
                - Case(When(birthday_not_reached, then=1), default=0),
                output_field=models.IntegerField(),
            )
        )
        .filter(Q(age__lt=low) | Q(age__gt=high))
        .values(
            "pk",
            "site_id",
            "subject_identifier",
            "date_of_birth",
            "age_at_screening",
            "consent_date",
            "age",
        )
    )
    for row in rows:
        field = "date_of_birth" if row["date_of_birth"] else "age_at_screening"
        yield _subject_violation(
            row,
            field,
            f"The subject was {row['age']} at consent ({row['consent_date']:%Y-%m-%d}); the "
            f"protocol admits {low} to {high} (IN01). Check the date of birth or the age.",
            {field: row[field], "consent_date": row["consent_date"]},
        )


def _died_without_a_fatal_ae(scope: Scope):
    fatal = AdverseEvent.objects.filter(subject=OuterRef("pk")).filter(
        Q(grade=5) | Q(outcome=AeOutcome.FATAL)
    )
    rows = (
        scope.narrow(Subject.objects.all(), "pk")
        .filter(status=SubjectStatus.DIED)
        .exclude(Exists(fatal))
        .values("pk", "site_id", "subject_identifier", "status_date")
    )
    for row in rows:
        yield _subject_violation(
            row,
            "status",
            "The subject died but no adverse event is fatal (grade 5): record the event that led "
            "to death, or confirm a death unrelated to any adverse event.",
            {"status": SubjectStatus.DIED, "status_date": row["status_date"]},
        )


def _death_before_randomization(scope: Scope):
    rows = (
        scope.narrow(Subject.objects.all(), "pk")
        .filter(status=SubjectStatus.DIED, status_date__isnull=False, allocation__isnull=False)
        .annotate(randomized_on=_randomized_on())
        .filter(status_date__lt=F("randomized_on"))
        .values("pk", "site_id", "subject_identifier", "status_date", "randomized_on")
    )
    for row in rows:
        yield _subject_violation(
            row,
            "status_date",
            f"The date of death ({row['status_date']:%Y-%m-%d}) is before randomization "
            f"({row['randomized_on']:%Y-%m-%d}).",
            {"status_date": row["status_date"], "randomized_on": row["randomized_on"]},
        )


def _screening_too_long(scope: Scope):
    days = edit_check_settings()["screening_max_days"]
    too_long = timedelta(days=days)
    rows = (
        scope.narrow(Subject.objects.all(), "pk")
        .filter(status=SubjectStatus.SCREENING, consent_date__lt=scope.latest_today - too_long)
        .annotate(site_today=scope.site_today("site"))
        .values("pk", "site_id", "subject_identifier", "consent_date", "site_today")
    )
    for row in rows:
        if row["consent_date"] >= row["site_today"] - too_long:
            continue  # not yet at its site
        yield _subject_violation(
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
        scope.narrow(Subject.objects.all(), "pk")
        .filter(status_date__isnull=False)
        .filter(Exists(history))
        .values("pk", "site_id", "subject_identifier", "status", "status_date")
    )
    for row in rows:
        yield _subject_violation(
            row,
            "status_date",
            f"The date of the status {SubjectStatus(row['status']).label.lower()} "
            f"({row['status_date']:%Y-%m-%d}) is before the date of the previous status.",
            {"status": row["status"], "status_date": row["status_date"]},
        )


# --- eligibility at randomization ------------------------------------------------------------


def _randomized_assessments(scope: Scope) -> models.QuerySet:
    return (
        scope.narrow(EligibilityAssessment.objects.all(), "subject")
        .filter(subject__allocation__isnull=False)
        .annotate(randomized_on=_randomized_on("subject__allocation"))
    )


ASSESSMENT_ROW = ("pk", "subject_id", "subject__site_id", "subject__subject_identifier")


def _assessment_violation(row, field, message, values) -> Violation:
    return Violation(
        row["subject_id"],
        row["subject__site_id"],
        EligibilityAssessment,
        row["pk"],
        field,
        _label(row["subject__subject_identifier"], "eligibility"),
        message,
        values,
    )


def _dated_too_long_before_randomization(scope: Scope, field: str, window: int, what: str):
    """Assessments whose ``field`` date is more than ``window`` days before randomization."""
    rows = (
        _randomized_assessments(scope)
        .filter(**{f"{field}__isnull": False})
        .annotate(gap=_days_between(F("randomized_on"), F(field)))
        .filter(gap__gt=timedelta(days=window))
        .values(*ASSESSMENT_ROW, field, "randomized_on")
    )
    for row in rows:
        yield _assessment_violation(
            row,
            field,
            f"{what} ({row[field]:%Y-%m-%d}) is more than {window} days before randomization "
            f"({row['randomized_on']:%Y-%m-%d}).",
            {field: row[field], "randomized_on": row["randomized_on"]},
        )


def _pregnancy_test_too_early(scope: Scope):
    window = elig_settings.protocol()["pregnancy_test_window_days"]
    yield from _dated_too_long_before_randomization(
        scope, "pregnancy_test_date", window, "The serum pregnancy test (IN11)"
    )


def _labs_too_old(scope: Scope):
    yield from _dated_too_long_before_randomization(
        scope, "lab_date", elig_settings.lab_max_age_days(), "The screening blood sample"
    )


def _planned_randomization_far_off(scope: Scope):
    days = edit_check_settings()["planned_randomization_max_days"]
    rows = (
        scope.narrow(EligibilityAssessment.objects.all(), "subject")
        .filter(subject__status=SubjectStatus.SCREENING, planned_randomization_date__isnull=False)
        .annotate(
            saved_on=SiteDate("updated", "subject__site"),  # the planned date is a site date too
            gap=_days_between(F("planned_randomization_date"), F("saved_on")),
        )
        .filter(gap__gt=timedelta(days=days))
        .values(*ASSESSMENT_ROW, "planned_randomization_date", "saved_on")
    )
    for row in rows:
        yield _assessment_violation(
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


# Each stratification factor of the allocation, and the CRF field a query about it points at.
STRATIFICATION_FIELDS = {
    "macrovascular_or_extrahepatic": "macrovascular_invasion",
    "ecog": "ecog",
    "prior_locoregional_therapy": "prior_locoregional_therapy",
}


def _stratification_differs(scope: Scope):
    crf = "subject__eligibility__"
    either_present = Case(
        When(
            Q(**{f"{crf}macrovascular_invasion": True}) | Q(**{f"{crf}extrahepatic_spread": True}),
            then=True,
        ),
        default=False,
        output_field=models.BooleanField(),
    )
    missing = (
        Q(**{f"{crf}macrovascular_invasion__isnull": True})
        | Q(**{f"{crf}extrahepatic_spread__isnull": True})
        | Q(**{f"{crf}ecog__isnull": True})
        | Q(**{f"{crf}prior_locoregional_therapy__isnull": True})
    )
    rows = (
        scope.narrow(Allocation.objects.all(), "subject")
        .filter(subject__eligibility__isnull=False)
        .annotate(
            crf_macro=either_present,
            crf_ecog=F(f"{crf}ecog"),
            crf_prior=F(f"{crf}prior_locoregional_therapy"),
        )
        .filter(
            missing
            | ~Q(macrovascular_or_extrahepatic=F("crf_macro"))
            | ~Q(ecog=F("crf_ecog"))
            | ~Q(prior_locoregional_therapy=F("crf_prior"))
        )
        .values(
            "subject_id",
            "subject__site_id",
            "subject__subject_identifier",
            "subject__eligibility__pk",
            *STRATIFICATION_FIELDS,
            "crf_macro",
            "crf_ecog",
            "crf_prior",
            f"{crf}macrovascular_invasion",
            f"{crf}extrahepatic_spread",
        )
    )
    for row in rows:
        now = {
            "macrovascular_or_extrahepatic": None
            if row[f"{crf}macrovascular_invasion"] is None
            or row[f"{crf}extrahepatic_spread"] is None
            else row["crf_macro"],
            "ecog": row["crf_ecog"],
            "prior_locoregional_therapy": row["crf_prior"],
        }
        for factor, crf_field in STRATIFICATION_FIELDS.items():
            if now[factor] == row[factor]:
                continue
            shown = "missing" if now[factor] is None else _yes_no(now[factor])
            yield Violation(
                row["subject_id"],
                row["subject__site_id"],
                EligibilityAssessment,
                row["subject__eligibility__pk"],
                crf_field,
                _label(row["subject__subject_identifier"], "eligibility"),
                f"The subject was randomized with {_FACTOR_NAMES[factor]} "
                f"{_yes_no(row[factor])}; the CRF now says {shown}. The allocation stands: "
                "correct the CRF, or confirm the value used at randomization was wrong.",
                {"used": row[factor], "crf": now[factor]},
            )


_FACTOR_NAMES = {
    "macrovascular_or_extrahepatic": "macrovascular invasion/extrahepatic spread",
    "ecog": "ECOG",
    "prior_locoregional_therapy": "prior locoregional therapy",
}


def _yes_no(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# --- adverse events ----------------------------------------------------------------------------

AE_ROW = ("pk", "subject_id", "subject__site_id", "subject__subject_identifier", "ae_number")


def _ae_violation(row, field, message, values) -> Violation:
    return Violation(
        row["subject_id"],
        row["subject__site_id"],
        AdverseEvent,
        row["pk"],
        field,
        _ae_label(row),
        message,
        values,
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
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .filter(grade__gte=3, subject__allocation__isnull=False)
        .values(*AE_ROW, "grade", "subject__allocation__arm")
        .annotate(**flags)
        .filter(lacking)
    )
    for row in rows:
        missing = [
            drug for drug in DRUGS_OF_ARM[row["subject__allocation__arm"]] if not row[f"has_{drug}"]
        ]
        yield _ae_violation(
            row,
            "",
            f"Grade {row['grade']} event without the causality to "
            f"{' and '.join(drug_name(d) for d in missing)}: give the causality and the action "
            "taken for every study drug of the subject's arm.",
            {"grade": row["grade"], "missing": sorted(missing)},
        )


def _causality_for_a_drug_not_taken(scope: Scope):
    wrong = Q(adverse_event__subject__allocation__isnull=True)
    for arm, drugs in DRUGS_OF_ARM.items():
        wrong |= Q(adverse_event__subject__allocation__arm=arm) & ~Q(drug__in=drugs)
    rows = (
        scope.narrow(AeCausality.objects.all(), "adverse_event__subject")
        .filter(wrong)
        .values(
            "pk",
            "drug",
            "adverse_event__ae_number",
            "adverse_event__subject_id",
            "adverse_event__subject__site_id",
            "adverse_event__subject__subject_identifier",
            "adverse_event__subject__allocation__arm",
        )
    )
    for row in rows:
        arm = row["adverse_event__subject__allocation__arm"]
        taken = f"arm {arm} ({Arm(arm).label})" if arm else "no study drug (not randomized)"
        yield Violation(
            row["adverse_event__subject_id"],
            row["adverse_event__subject__site_id"],
            AeCausality,
            row["pk"],
            "drug",
            f"{row['adverse_event__subject__subject_identifier']} AE "
            f"{row['adverse_event__ae_number']} causality ({drug_name(row['drug'])})",
            f"A causality is recorded for {drug_name(row['drug'])}, which the subject does not "
            f"take: {taken}.",
            {"drug": row["drug"], "arm": arm},
        )


def _sae_not_reported_in_time(scope: Scope):
    rows = (
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .in_sae_clock(SaeClock.OVERDUE, SaeClock.REPORTED_LATE, now=scope.now)
        .values(*AE_ROW, "site_aware_at", "sae_reported_at")
    )
    for row in rows:
        reported = row["sae_reported_at"]
        when = f"was reported at {reported:%Y-%m-%d %H:%M} UTC" if reported else "is not reported"
        yield _ae_violation(
            row,
            "sae_reported_at",
            f"The serious event {when}, more than 24 hours after the site became aware "
            f"({row['site_aware_at']:%Y-%m-%d %H:%M} UTC): give the report time, or explain "
            "the delay.",
            {"site_aware_at": row["site_aware_at"], "sae_reported_at": reported},
        )


def _fatal_ae_but_alive(scope: Scope):
    rows = (
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .filter(grade=5)
        .exclude(subject__status=SubjectStatus.DIED)
        .values(*AE_ROW, "subject__status")
    )
    for row in rows:
        yield _ae_violation(
            row,
            "grade",
            f"The event is grade 5 (fatal) but the subject's status is "
            f"{SubjectStatus(row['subject__status']).label.lower()}.",
            {"grade": 5, "status": row["subject__status"]},
        )


def _immune_related_on_sorafenib(scope: Scope):
    rows = (
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .filter(immune_related=True, subject__allocation__arm=Arm.B)
        .values(*AE_ROW)
    )
    for row in rows:
        yield _ae_violation(
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
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .filter(Exists(earlier))
        .values(*AE_ROW, "term__term", "onset_date")
    )
    for row in rows:
        yield _ae_violation(
            row,
            "term",
            f"{row['term__term']} with onset {row['onset_date']:%Y-%m-%d} is recorded twice for "
            "this subject: a duplicate?",
            {"term": row["term__term"], "onset_date": row["onset_date"]},
        )


ENDED_STUDY = (SubjectStatus.COMPLETED, SubjectStatus.WITHDRAWN)


def _ongoing_after_the_study_ended(scope: Scope):
    rows = (
        scope.narrow(AdverseEvent.objects.all(), "subject")
        .filter(ongoing=True, subject__status__in=ENDED_STUDY)
        .values(*AE_ROW, "subject__status", "subject__status_date")
    )
    for row in rows:
        yield _ae_violation(
            row,
            "ongoing",
            f"The event is ongoing but the subject's study ended "
            f"({SubjectStatus(row['subject__status']).label.lower()} on "
            f"{row['subject__status_date']:%Y-%m-%d}): give the end date or the outcome at the "
            "end of the study.",
            {"ongoing": True, "status": row["subject__status"]},
        )


# --- the registry --------------------------------------------------------------------------------

OWN_CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "SUBJ-001",
        "Randomized subject without a valid signed eligible assessment",
        EligibilityAssessment,
        (),
        Severity.ERROR,
        _randomized_without_signature,
    ),
    EditCheck(
        "SUBJ-002",
        "Age at consent outside the protocol's 18-75 for a randomized subject",
        Subject,
        ("date_of_birth", "age_at_screening"),
        Severity.ERROR,
        _age_at_consent_outside_the_protocol,
    ),
    EditCheck(
        "SUBJ-003",
        "Subject died but no adverse event is fatal",
        Subject,
        ("status",),
        Severity.ERROR,
        _died_without_a_fatal_ae,
    ),
    EditCheck(
        "SUBJ-004",
        "Date of death before randomization",
        Subject,
        ("status_date",),
        Severity.ERROR,
        _death_before_randomization,
    ),
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
    EditCheck(
        "ELIG-001",
        "Pregnancy test more than 7 days before randomization",
        EligibilityAssessment,
        ("pregnancy_test_date",),
        Severity.ERROR,
        _pregnancy_test_too_early,
    ),
    EditCheck(
        "ELIG-002",
        "Planned randomization date too far after the CRF was saved",
        EligibilityAssessment,
        ("planned_randomization_date",),
        Severity.WARNING,
        _planned_randomization_far_off,
    ),
    EditCheck(
        "ELIG-003",
        "Screening labs older than the protocol window at randomization",
        EligibilityAssessment,
        ("lab_date",),
        Severity.ERROR,
        _labs_too_old,
    ),
    EditCheck(
        "RAND-001",
        "Stratification values at randomization differ from the CRF",
        EligibilityAssessment,
        tuple(STRATIFICATION_FIELDS.values()),
        Severity.ERROR,
        _stratification_differs,
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

# The registry: these checks, then each CRF app's ``edit_checks.CHECKS`` in layer order. Read
# at import (the modules that import this one load after the apps are ready).
CHECKS: tuple[EditCheck, ...] = OWN_CHECKS + tuple(collected("edit_checks", "CHECKS"))

CHECKS_BY_CODE: dict[str, EditCheck] = {check.code: check for check in CHECKS}
assert len(CHECKS_BY_CODE) == len(CHECKS), "two edit checks share a code"


class UnknownCheck(DomainError):
    pass


def checks_named(codes: Iterable[str] | None) -> tuple[EditCheck, ...]:
    """The checks with these codes (all when ``codes`` is None); unknown codes are refused."""
    if codes is None:
        return CHECKS
    codes = [code.strip().upper() for code in codes]
    unknown = [code for code in codes if code not in CHECKS_BY_CODE]
    if unknown:
        known = ", ".join(CHECKS_BY_CODE)
        raise UnknownCheck(f"There is no edit check {', '.join(unknown)}. The checks: {known}.")
    return tuple(CHECKS_BY_CODE[code] for code in codes)
