"""Site-staff web forms for subjects (Django test client)."""

import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from subjects.models import Subject

from .builders import PASSWORD, make_subject

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, coordinator):
    assert client.login(username=coordinator.username, password=PASSWORD)
    return client


def test_register_screened_patient(staff_client, site):
    response = staff_client.post(
        reverse("subjects:register"),
        {
            "submission": str(uuid.uuid4()),  # the form's one-time token
            "site": site.pk,
            "screening_number": "SCR-7",
            "screening_date": timezone.localdate().isoformat(),
            "date_of_birth": "1960-02-03",
            "sex": "F",
            "initials": "ab",
        },
        follow=True,
    )
    assert "Subject 101-0001 registered" in response.text
    subject = Subject.objects.get()
    assert (subject.initials, subject.sex) == ("AB", "F")


def test_register_bad_input_shows_errors_and_saves_nothing(staff_client, site):
    response = staff_client.post(
        reverse("subjects:register"),
        {
            "site": site.pk,
            "screening_number": "SCR-8",
            "screening_date": timezone.localdate().isoformat(),
            "date_of_birth": (timezone.localdate() + timedelta(days=2)).isoformat(),
            "sex": "F",
        },
    )
    assert response.status_code == 200
    assert "This date is in the future." in response.text
    assert not Subject.objects.exists()


def test_consent_then_correction_needs_reason(staff_client, site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    url = reverse("subjects:consent", args=[subject.subject_identifier])
    today = timezone.localdate().isoformat()
    staff_client.post(url, {"consent_date": today, "consent_version": "2.0"})
    subject.refresh_from_db()
    assert subject.consent_date == timezone.localdate()
    response = staff_client.post(url, {"consent_date": "2020-01-01", "consent_version": "2.0"})
    assert "This field is required" in response.text
    subject.refresh_from_db()
    assert subject.consent_date == timezone.localdate()


def test_status_form_offers_only_the_changes_the_service_allows(staff_client, subject):
    page = staff_client.get(reverse("subjects:status", args=[subject.subject_identifier]))
    assert '<option value="screen_failed">' in page.text
    assert 'value="completed"' not in page.text and 'value="randomized"' not in page.text
    response = staff_client.post(
        reverse("subjects:status", args=[subject.subject_identifier]),
        {"status": "completed", "on_date": timezone.localdate().isoformat(), "reason": "done"},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    subject.refresh_from_db()
    assert subject.status == "screening"


def test_a_final_status_offers_no_status_change(staff_client, subject, coordinator):
    from subjects import services

    services.change_status(
        subject, "screen_failed", user=coordinator, reason="ECOG 3", on_date=subject.screening_date
    )
    assert "Change status" not in staff_client.get(subject.get_absolute_url()).text
    response = staff_client.get(
        reverse("subjects:status", args=[subject.subject_identifier]), follow=True
    )
    assert response.redirect_chain[-1][0] == subject.get_absolute_url()
    assert "screen failed: final" in response.text


def test_edit_demographics_records_reason(staff_client, subject):
    response = staff_client.post(
        reverse("subjects:edit", args=[subject.subject_identifier]),
        {
            "screening_number": subject.screening_number,
            "screening_date": subject.screening_date.isoformat(),
            "initials": "",
            "date_of_birth": subject.date_of_birth.isoformat(),
            "sex": "F",
            "reason": "Corrected from source",
        },
    )
    assert response.status_code == 302
    page = staff_client.get(subject.get_absolute_url()).text
    assert "Corrected from source" in page
    assert "Sex: Male → Female" in page


def test_other_sites_subjects_are_invisible(client, other_site, coordinator):
    foreign = make_subject(other_site)
    assert client.login(username=coordinator.username, password=PASSWORD)
    assert foreign.subject_identifier not in client.get(reverse("subjects:list")).text
    for name in ("detail", "consent", "edit", "status", "delete"):
        url = reverse(f"subjects:{name}", args=[foreign.subject_identifier])
        assert client.get(url).status_code == 404, name
        assert client.post(url, {"reason": "x"}).status_code == 404, name
    assert Subject.objects.filter(pk=foreign.pk).exists()


def test_pages_need_login(client, subject):
    response = client.get(subject.get_absolute_url())
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_deleting_a_subject_with_crf_data_is_refused_with_a_message(
    staff_client, site, coordinator
):
    """A screening subject with an eligibility assessment: a form error, not a 500."""
    from .builders import make_eligible_assessment

    subject = make_subject(site, by=coordinator)
    make_eligible_assessment(subject, by=coordinator, sign=False)
    url = reverse("subjects:delete", args=[subject.subject_identifier])
    response = staff_client.post(url, {"reason": "Registered in error"})
    assert response.status_code == 200
    assert "has CRF data (eligibility assessment)" in response.text
    assert Subject.objects.filter(pk=subject.pk).exists()
    assert not Subject.history.filter(history_type="-").exists()


def test_sponsor_does_not_see_initials_or_date_of_birth_on_the_pages(
    client, subject, sponsor, coordinator
):
    from subjects import services

    services.update_demographics(subject, user=coordinator, reason="Late entry", initials="Q-XZ")
    client.force_login(sponsor)
    page = client.get(subject.get_absolute_url())
    assert page.status_code == 200
    assert subject.subject_identifier in page.text
    assert "Q-XZ" not in page.text and "1965-05-17" not in page.text
    assert "Initials: (not shown to your role) → (not shown to your role)" in page.text
    response = client.get(reverse("subjects:edit", args=[subject.subject_identifier]), follow=True)
    assert response.redirect_chain[-1][0] == subject.get_absolute_url()
    assert "at site 101." in response.text  # why the form is refused
    assert "Q-XZ" not in response.text and "1965-05-17" not in response.text


def test_the_subject_page_filters_its_audit_timeline_by_record(staff_client, subject, coordinator):
    from tests.builders import make_eligible_assessment

    make_eligible_assessment(subject, by=coordinator)
    url = subject.get_absolute_url()
    everything = staff_client.get(url).text
    assert (
        "Eligibility assessment" in everything and "Subject registered at screening" in everything
    )
    only_crf = staff_client.get(url, {"record": "eligibility.eligibilityassessment"}).text
    assert "Subject registered at screening" not in only_crf
    assert "Test data" in only_crf  # the CRF's own reason
    assert '<option value="eligibility.eligibilityassessment" selected>' in only_crf
    unknown = staff_client.get(url, {"record": "nothing.here"}).text
    assert "Subject registered at screening" in unknown  # an unknown kind shows everything
