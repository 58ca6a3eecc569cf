"""The investigator's casebook sign-off: a Part 11 e-signature (password re-entered, printed
name, time, meaning) bound to a hash of the casebook's data, voided by any later change."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.models import AuthEvent
from core.errors import AccessDenied
from core.roles import Role
from monitoring import casebook, services
from monitoring.models import CASEBOOK_MEANING, CasebookSignature
from queries import services as queries
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus
from tests import builders
from tests.builders import PASSWORD, site_today

pytestmark = pytest.mark.django_db


@pytest.fixture
def ended(subject, coordinator):
    """A subject at the end of its participation (screen failed)."""
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Not eligible",
        on_date=site_today(),
    )
    return Subject.objects.get(pk=subject.pk)


def test_the_signature_records_who_when_what_it_means_and_the_hash(ended, investigator):
    investigator.first_name, investigator.last_name = "Li", "Wei"
    investigator.save()
    signature = services.sign_casebook(ended, user=investigator, password=PASSWORD)
    assert signature.signer == investigator and signature.signer_name == "Li Wei"
    assert signature.meaning == CASEBOOK_MEANING
    assert (
        CASEBOOK_MEANING
        == "I have reviewed the data in this casebook and confirm it is complete and accurate."
    )
    assert signature.data_hash == casebook.data_hash(ended) and len(signature.data_hash) == 64
    assert services.signature_is_valid(signature)


def test_a_wrong_password_is_refused_and_logged(ended, investigator):
    with pytest.raises(Exception, match="password is not correct"):
        services.sign_casebook(ended, user=investigator, password="wrong")
    assert not CasebookSignature.objects.exists()
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.SIGNATURE_REFUSED).exists()


def test_only_an_investigator_of_the_site_signs(ended, coordinator, other_site):
    other = builders.make_user(Role.INVESTIGATOR, other_site)
    for user in (coordinator, other):
        with pytest.raises(AccessDenied, match="not an investigator at site 101"):
            services.sign_casebook(ended, user=user, password=PASSWORD)


def test_a_casebook_is_signed_at_the_end_of_participation_without_open_queries(
    subject, investigator, coordinator, data_manager
):
    with pytest.raises(services.MonitoringRefused, match="end of the subject's participation"):
        services.sign_casebook(subject, user=investigator, password=PASSWORD)
    query = queries.raise_query(subject, field="sex", message="Check", user=data_manager)
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Not eligible",
        on_date=site_today(),
    )
    with pytest.raises(services.MonitoringRefused, match="1 unresolved data query"):
        services.sign_casebook(subject, user=investigator, password=PASSWORD)
    queries.cancel_query(query, user=data_manager, text="Raised in error")
    services.sign_casebook(subject, user=investigator, password=PASSWORD)
    with pytest.raises(services.MonitoringRefused, match="already signed"):
        services.sign_casebook(subject, user=investigator, password=PASSWORD)


def test_a_change_to_the_casebook_voids_the_signature(ended, investigator, coordinator):
    signature = services.sign_casebook(ended, user=investigator, password=PASSWORD)
    subject_services.update_demographics(
        ended, user=coordinator, reason="Initials corrected", initials="AB"
    )
    signature.refresh_from_db()
    assert signature.void and signature.voided_at is not None
    assert signature.void_reason == "The casebook changed after it was signed: Initials corrected"
    assert signature.history.order_by("-history_id").first().history_user == coordinator
    assert not services.signature_is_valid(signature)
    assert "casebook not signed by the investigator" in services.subject_lock_blockers(
        Subject.objects.get(pk=ended.pk)
    )
    # Signed again over the new data.
    again = services.sign_casebook(
        Subject.objects.get(pk=ended.pk), user=investigator, password=PASSWORD
    )
    assert again.data_hash != signature.data_hash and services.signature_is_valid(again)


def test_a_query_does_not_void_the_signature_but_the_hash_follows_the_data(
    ended, investigator, data_manager
):
    signature = services.sign_casebook(ended, user=investigator, password=PASSWORD)
    queries.raise_query(ended, field="sex", message="Check", user=data_manager)
    signature.refresh_from_db()
    assert not signature.void and casebook.hash_matches(signature)
    data = casebook.casebook_data(ended)
    assert data["subjects.subject"][0]["subject_identifier"] == ended.subject_identifier
    assert "queries.dataquery" not in data and "monitoring.casebooksignature" not in data


def test_the_sign_page_asks_the_password_and_the_subject_page_shows_the_badge(
    client, ended, investigator
):
    client.force_login(investigator)
    url = reverse("monitoring:sign_casebook", args=[ended.subject_identifier])
    page = client.get(url).content.decode()
    assert CASEBOOK_MEANING in page and 'type="password"' in page
    refused = client.post(url, {"password": "wrong"}).content.decode()
    assert "The password is not correct: the signature was not recorded." in refused
    assert not CasebookSignature.objects.exists()
    response = client.post(url, {"password": PASSWORD}, follow=True)
    html = response.content.decode()
    assert "Casebook signed." in html and 'data-badge="signed"' in html
