"""Entering the eligibility CRF, the investigator's e-signature, screen failures, audit trail."""

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from core.errors import AccessDenied, DomainError, ReasonRequired
from core.roles import Role
from eligibility import selectors, services
from eligibility.models import EligibilityAssessment, EligibilitySignature, SignatureKind
from eligibility.services import NotRandomizable, SignatureRefused
from eligibility.signed_data import signed_data
from subjects import services as subject_services
from subjects.models import SubjectStatus
from subjects.services import ConsentRequired
from tests.builders import (  # noqa: F401
    PASSWORD,
    days_ago,
    eligible_data,
    make_eligible_assessment,
    make_site,
    make_subject,
    make_user,
)
from tests.builders.tamper import behind_the_audit


def save(subject, user, reason="", **data):
    return services.save_assessment(subject, user=user, data=data, reason=reason)


# --- entering data -------------------------------------------------------------------------------


def test_no_crf_data_before_consent(site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    with pytest.raises(ConsentRequired, match="no informed consent"):
        save(subject, coordinator, ecog=0)
    assert not EligibilityAssessment.objects.exists()


@pytest.mark.parametrize("role", [Role.MONITOR, Role.DATA_MANAGER, Role.SPONSOR])
def test_only_data_entry_roles_enter_data(subject, site, role):
    user = make_user(role, site)
    with pytest.raises(AccessDenied):
        save(subject, user, ecog=0)
    assert not EligibilityAssessment.objects.exists()


def test_other_site_staff_cannot_enter_data(subject, other_coordinator):
    with pytest.raises(AccessDenied, match="site 101"):
        save(subject, other_coordinator, ecog=0)


def test_partial_save_then_change_needs_reason(subject, coordinator):
    assessment = save(subject, coordinator, ecog=0, bclc_stage="C")
    assert services.evaluate_eligibility(assessment).status == services.Status.INCOMPLETE
    with pytest.raises(ReasonRequired):
        save(subject, coordinator, ecog=1)
    assert EligibilityAssessment.objects.get().ecog == 0
    save(subject, coordinator, reason="ECOG re-assessed by the investigator", ecog=1)
    latest = EligibilityAssessment.history.order_by("-history_date").first()
    assert latest.ecog == 1 and latest.history_change_reason.startswith("ECOG re-assessed")
    assert latest.history_user == coordinator


def test_unknown_fields_refused(subject, coordinator):
    with pytest.raises(DomainError, match="not eligibility CRF fields: id, subject"):
        services.save_assessment(
            subject, user=coordinator, data={"ecog": 0, "subject": None, "id": 3}
        )


@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"measurable_lesions": -1}, "measurable_lesions", "greater than or equal to 0"),
        ({"platelets_reported": Decimal("25000")}, "platelets_reported", "between 0 and 2000"),
        ({"total_bilirubin_reported": Decimal("-1")}, "total_bilirubin_reported", "check the unit"),
        ({"inr_reported": Decimal("0.1")}, "inr_reported", "between 0.5 and 10"),
        ({"ecog": 5}, "ecog", "not a valid choice"),
        ({"lab_date": days_ago(-2)}, "lab_date", "in the future"),
        (
            {"live_vaccine_received": False, "last_live_vaccine_date": days_ago(3)},
            "last_live_vaccine_date",
            "Leave the date empty",
        ),
        ({"investigator_judges_unsuitable": True}, "unsuitable_reason", "Say why"),
        ({"childbearing_potential": True}, "childbearing_potential", "female subjects only"),
        (
            {"planned_randomization_date": days_ago(30)},
            "planned_randomization_date",
            "before the informed consent",
        ),
    ],
)
def test_bad_input_is_refused_and_saves_nothing(subject, coordinator, data, field, words):
    with pytest.raises(ValidationError) as caught:
        save(subject, coordinator, **eligible_data(subject, **data))
    assert words in " ".join(caught.value.message_dict[field])
    assert not EligibilityAssessment.objects.exists()
    assert not EligibilityAssessment.history.exists()


def test_bad_input_on_change_keeps_the_saved_data(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    with pytest.raises(ValidationError):
        save(subject, coordinator, reason="typo", measurable_lesions=-2)
    assessment.refresh_from_db()
    assert assessment.measurable_lesions == 2
    assert selectors.active_signature(assessment) is not None  # nothing saved, nothing voided


def test_future_date_of_birth_refused(subject, coordinator):
    """Age comes from the subject: a future date of birth never reaches the evaluation."""
    with pytest.raises(ValidationError) as caught:
        subject_services.update_demographics(
            subject, user=coordinator, reason="correction", date_of_birth=days_ago(-2)
        )
    assert "in the future" in " ".join(caught.value.message_dict["date_of_birth"])
    subject.refresh_from_db()
    assert subject.date_of_birth.year == 1965


# --- signing -------------------------------------------------------------------------------------


def test_sign_records_who_when_meaning_and_hash(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    signature = services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    signature.refresh_from_db()
    assert signature.kind == SignatureKind.ELIGIBLE
    assert signature.signer == investigator
    assert signature.meaning == "I confirm this subject meets all eligibility criteria."
    assert signature.signed_at.utcoffset() == timedelta(0)
    expected = hashlib.sha256(
        json.dumps(signed_data(assessment), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    assert signature.data_hash == expected
    assert signed_data(assessment)["assessment"]["inr"] == "1.10"
    assert signature.history.get().history_user == investigator


@pytest.mark.parametrize(
    "who, error, words",
    [
        ("wrong_password", SignatureRefused, "password is not correct"),
        ("coordinator", AccessDenied, "not an investigator at site 101"),
        ("other_site_investigator", AccessDenied, "site 101"),
        ("data_manager", AccessDenied, "site 101"),
    ],
)
def test_sign_refused(subject, coordinator, investigator, other_site, who, error, words):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    user, password = {
        "wrong_password": (investigator, "not my password"),
        "coordinator": (coordinator, PASSWORD),
        "other_site_investigator": (make_user(Role.INVESTIGATOR, other_site), PASSWORD),
        "data_manager": (make_user(Role.DATA_MANAGER), PASSWORD),
    }[who]
    with pytest.raises(error, match=words):
        services.sign_eligibility(assessment, user=user, password=password)
    assert not EligibilitySignature.objects.exists()


def test_only_complete_eligible_assessment_is_signed(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False, hiv=None)
    with pytest.raises(SignatureRefused, match="Incomplete.*EX18"):
        services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    save(subject, coordinator, reason="HIV test result", hiv=True)
    with pytest.raises(SignatureRefused, match="Not eligible.*EX18"):
        services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    assert not EligibilitySignature.objects.exists()


def test_signing_twice_refused(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, investigator=investigator)
    with pytest.raises(SignatureRefused, match="already signed"):
        services.sign_eligibility(assessment, user=investigator, password=PASSWORD)


def test_edit_voids_the_signature_with_reason(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, investigator=investigator)
    signature = selectors.active_signature(assessment)
    save(subject, coordinator, reason="Platelets re-tested", platelets=Decimal("150"))
    signature.refresh_from_db()
    assert signature.void and signature.voided_at
    assert signature.void_reason == "The assessment was changed: Platelets re-tested"
    last = signature.history.order_by("-history_date").first()
    assert (
        last.history_type == "~"
        and last.void
        and "Platelets re-tested" in (last.history_change_reason)
    )
    assert selectors.active_signature(assessment) is None
    with pytest.raises(NotRandomizable, match="voided by a change"):
        services.randomization_factors(subject, days_ago(0))
    # The investigator signs the changed data again.
    again = services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    assert again.data_hash != signature.data_hash
    assert services.randomization_factors(subject, days_ago(0)) == services.stratification_factors(
        subject
    )


def test_saving_unchanged_data_keeps_the_signature(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    before = assessment.history.count()
    save(subject, coordinator, **eligible_data(subject))  # same values: not a change
    assert selectors.active_signature(assessment) is not None
    assert assessment.history.count() == before


def test_a_change_to_the_subjects_signed_data_voids_the_signature_with_its_reason(
    subject, coordinator
):
    assessment = make_eligible_assessment(subject, by=coordinator)
    signature = selectors.active_signature(assessment)
    subject_services.update_demographics(
        subject,
        user=coordinator,
        reason="DOB corrected from the ID card",
        date_of_birth=subject.date_of_birth - timedelta(days=400),
    )
    signature.refresh_from_db()
    assert signature.void
    assert (
        signature.void_reason == "The subject's data were changed: DOB corrected from the ID card"
    )
    assert signature.history.first().history_change_reason == signature.void_reason
    assert selectors.valid_signature(assessment) is None
    with pytest.raises(NotRandomizable, match="voided by a change"):
        services.randomization_factors(subject, days_ago(0))


def test_a_consent_correction_voids_the_signature(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    subject_services.record_consent(
        subject,
        user=coordinator,
        consent_date=subject.consent_date,
        consent_version="v2.1",
        reason="Version misread",
    )
    assert selectors.active_signature(assessment) is None


def test_a_change_the_signature_does_not_cover_keeps_it(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    subject_services.update_demographics(subject, user=coordinator, reason="Typo", initials="QZ")
    assert selectors.valid_signature(assessment) is not None


def test_a_signature_that_no_longer_matches_is_never_shown_valid(subject, coordinator):
    """Even when data change by a path that bypassed the services (a raw update)."""
    assessment = make_eligible_assessment(subject, by=coordinator)
    behind_the_audit(type(subject)).filter(pk=subject.pk).update(
        sex="M" if subject.sex == "F" else "F"
    )
    assessment = selectors.get_assessment(subject)
    assert selectors.active_signature(assessment) is not None
    assert selectors.valid_signature(assessment) is None
    [row] = selectors.signature_history(assessment)
    assert row.state.startswith("No longer matches the data")
    with pytest.raises(NotRandomizable, match="changed after the investigator signed"):
        services.randomization_factors(assessment.subject, days_ago(0))


def test_randomizable_refuses_other_statuses(subject, coordinator, investigator):
    make_eligible_assessment(subject, by=coordinator)
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="withdrew",
        on_date=days_ago(0),
    )
    with pytest.raises(NotRandomizable, match="screen failed"):
        services.randomization_factors(subject, days_ago(0))


def test_randomizable_rechecks_windows_on_the_actual_date(site, coordinator):
    subject = make_subject(site, by=coordinator, sex="F")
    make_eligible_assessment(
        subject,
        by=coordinator,
        childbearing_potential=True,
        pregnancy_test_date=days_ago(6),
        pregnancy_test_result="negative",
    )
    assert services.randomization_factors(subject, days_ago(-1))  # 7 days: still within
    with pytest.raises(NotRandomizable, match="IN11.*8 days"):
        services.randomization_factors(subject, days_ago(-2))


# --- screen failure ------------------------------------------------------------------------------


def test_confirm_screen_failure(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False, ecog=2)
    signature = services.confirm_screen_failure(
        assessment, user=investigator, password=PASSWORD, on_date=days_ago(0)
    )
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREEN_FAILED
    assert subject.status_date == days_ago(0)
    assert signature.kind == SignatureKind.SCREEN_FAILURE
    assert "IN07: ECOG 2" in signature.meaning
    last = subject.history.order_by("-history_date").first()
    assert "fails IN07" in last.history_change_reason and last.history_user == investigator


def test_a_screen_failure_is_dated_today_at_the_site_by_default(db, client):
    # 20:00 UTC on 31 October is 04:00 on 1 November in Shanghai, where consent was given that
    # day: UTC's date would come before the consent (refused).
    shanghai_morning = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    shanghai = make_site("303", time_zone="Asia/Shanghai")
    investigator = make_user(Role.INVESTIGATOR, shanghai)
    with mock.patch("django.utils.timezone.now", return_value=shanghai_morning):
        subject = make_subject(shanghai)
        assessment = make_eligible_assessment(subject, sign=False, ecog=2)
        client.force_login(investigator)
        page = client.get(reverse("eligibility:screen_failure", args=[subject.subject_identifier]))
        services.confirm_screen_failure(assessment, user=investigator, password=PASSWORD)
    assert page.context["form"].initial["on_date"] == date(2026, 11, 1)
    subject.refresh_from_db()
    assert (subject.status, subject.status_date) == (SubjectStatus.SCREEN_FAILED, date(2026, 11, 1))


def test_screen_failure_refused_for_eligible_or_wrong_password(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    with pytest.raises(SignatureRefused, match="Only a not-eligible"):
        services.confirm_screen_failure(assessment, user=investigator, password=PASSWORD)
    save(subject, coordinator, reason="CNS MRI", cns_metastases=True)
    with pytest.raises(SignatureRefused, match="password"):
        services.confirm_screen_failure(assessment, user=investigator, password="guess")
    with pytest.raises(AccessDenied):
        services.confirm_screen_failure(assessment, user=coordinator, password=PASSWORD)
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREENING
    assert not EligibilitySignature.objects.exists()
