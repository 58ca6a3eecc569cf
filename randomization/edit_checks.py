"""The edit checks that compare a subject's data with its randomization: randomized without a
valid eligibility signature, the age at consent, a death before randomization, the screening
tests' windows before randomization, and the stratification used against the CRF. Declared in
``randomization.contributions``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

from django.db import models
from django.db.models import Case, Exists, F, OuterRef, Q, When
from django.db.models.functions import ExtractDay, ExtractMonth, ExtractYear

from core.edit_checks import (
    EditCheck,
    RecordRows,
    Scope,
    Severity,
    Violation,
    days_between,
    record_label,
)
from eligibility import settings as elig_settings
from eligibility.edit_checks import ASSESSMENT_ROWS
from eligibility.models import EligibilityAssessment, EligibilitySignature, SignatureKind
from subjects.edit_checks import SUBJECT_ROWS
from subjects.models import Subject, SubjectStatus

from .arms import Arm, drug_name, drug_not_of_arm
from .models import Allocation
from .selectors import RandomizationDate


def drugs_outside_the_arm(rows: RecordRows, message: str) -> Callable[[Scope], Iterator[Violation]]:
    """The finder of the records of ``rows`` (a ``drug`` among their columns) naming a study drug
    the subject's arm does not take, or whose subject is not randomized (``drug_not_of_arm``):
    the apps that record a drug per record (doses, causalities) check it alike. ``message`` is
    formatted with the drug's name (``drug``) and what the subject takes (``taken``)."""
    arm_path = f"{rows.subject_path}__allocation__arm"

    def finder(scope: Scope) -> Iterator[Violation]:
        found = (
            rows.narrowed(scope)
            .filter(drug_not_of_arm(rows.subject_path))
            .values(*rows.columns, arm_path)
        )
        for row in found:
            arm = row[arm_path]
            taken = f"arm {arm} ({Arm(arm).label})" if arm else "no study drug (not randomized)"
            yield rows.violation(
                row,
                "drug",
                message.format(drug=drug_name(row["drug"]), taken=taken),
                {"drug": row["drug"], "arm": arm},
            )

    return finder


def _randomized_on(path: str = "allocation") -> RandomizationDate:
    """The randomization date (the site's date) of the subject reached by ``path`` to its
    allocation."""
    return RandomizationDate(path)


def _randomized_without_signature(scope: Scope):
    signed = EligibilitySignature.objects.filter(
        assessment=OuterRef("pk"), void=False, kind=SignatureKind.ELIGIBLE
    )
    rows = (
        ASSESSMENT_ROWS.narrowed(scope)
        .filter(subject__allocation__isnull=False)
        .exclude(Exists(signed))
        .values(*ASSESSMENT_ROWS.columns)
    )
    for row in rows:
        yield ASSESSMENT_ROWS.violation(
            row,
            "",
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
        SUBJECT_ROWS.narrowed(scope)
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
            *SUBJECT_ROWS.columns,
            "date_of_birth",
            "age_at_screening",
            "consent_date",
            "age",
        )
    )
    for row in rows:
        field = "date_of_birth" if row["date_of_birth"] else "age_at_screening"
        yield SUBJECT_ROWS.violation(
            row,
            field,
            f"The subject was {row['age']} at consent ({row['consent_date']:%Y-%m-%d}); the "
            f"protocol admits {low} to {high} (IN01). Check the date of birth or the age.",
            {field: row[field], "consent_date": row["consent_date"]},
        )


def _death_before_randomization(scope: Scope):
    rows = (
        SUBJECT_ROWS.narrowed(scope)
        .filter(status=SubjectStatus.DIED, status_date__isnull=False, allocation__isnull=False)
        .annotate(randomized_on=_randomized_on())
        .filter(status_date__lt=F("randomized_on"))
        .values(*SUBJECT_ROWS.columns, "status_date", "randomized_on")
    )
    for row in rows:
        yield SUBJECT_ROWS.violation(
            row,
            "status_date",
            f"The date of death ({row['status_date']:%Y-%m-%d}) is before randomization "
            f"({row['randomized_on']:%Y-%m-%d}).",
            {"status_date": row["status_date"], "randomized_on": row["randomized_on"]},
        )


def _randomized_assessments(scope: Scope) -> models.QuerySet:
    return (
        ASSESSMENT_ROWS.narrowed(scope)
        .filter(subject__allocation__isnull=False)
        .annotate(randomized_on=_randomized_on("subject__allocation"))
    )


def _dated_too_long_before_randomization(scope: Scope, field: str, window: int, what: str):
    """Assessments whose ``field`` date is more than ``window`` days before randomization."""
    rows = (
        _randomized_assessments(scope)
        .filter(**{f"{field}__isnull": False})
        .annotate(gap=days_between(F("randomized_on"), F(field)))
        .filter(gap__gt=timedelta(days=window))
        .values(*ASSESSMENT_ROWS.columns, field, "randomized_on")
    )
    for row in rows:
        yield ASSESSMENT_ROWS.violation(
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
                record_label(row["subject__subject_identifier"], "eligibility"),
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


CHECKS: tuple[EditCheck, ...] = (
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
        "SUBJ-004",
        "Date of death before randomization",
        Subject,
        ("status_date",),
        Severity.ERROR,
        _death_before_randomization,
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
)
