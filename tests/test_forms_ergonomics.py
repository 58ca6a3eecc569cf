"""The site forms as people use them: an error summary at the top that names each field in error
and links to it, nothing typed lost on an error, one record per submitted form whatever the
clicks, and error pages in the site's layout."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import path, reverse
from django.utils import timezone
from django.views.defaults import server_error

from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.models import SubmissionToken
from core.roles import Role
from edc.urls import urlpatterns as site_urlpatterns
from queries import services as query_services
from subjects.models import Subject

from .builders import PASSWORD, days_ago, make_site, make_subject, make_user, site_today, token_in
from .builders.browser import log_in
from .builders.threads import run_at_once

SUBJECTS_LINK = '<a class="button" href="/subjects/">Back to the subjects list</a>'


pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def terms():
    load_starter_terms()


def hypertension() -> int:
    return CtcaeTerm.objects.get(term="Hypertension").pk


def summary_of(html: str) -> str:
    """The error summary box at the top of the page ("" when there is none)."""
    found = re.search(r'<div class="card error-summary".*?</div>', html, re.S)
    return found.group(0) if found else ""


def assert_summary_links(html: str, fields: dict[str, str]) -> str:
    """The summary names each field in error by its label, linked to its input."""
    summary = summary_of(html)
    assert summary, "no error summary"
    assert "Nothing was saved" in summary
    for name, label in fields.items():
        assert f'<a href="#id_{name}">{label}</a>' in summary, (name, summary)
        assert f'id="id_{name}"' in html  # the link's target is on the page
    return summary


def ae_data(**fields) -> dict:
    data = {
        "term": hypertension(),
        "grade": "2",
        "onset_date": site_today().isoformat(),
        "ongoing": "on",
        "outcome": "not_recovered",
    }
    return data | fields


def register_data(site, **fields) -> dict:
    data = {
        "site": site.pk,
        "screening_number": "SCR-77",
        "screening_date": timezone.localdate().isoformat(),
        "date_of_birth": "1961-04-09",
        "sex": "M",
        "initials": "QX",
    }
    return data | fields


# --- the error summary, and nothing typed lost ----------------------------------------------------


def test_register_form_summary_names_fields_and_keeps_what_was_typed(client, site, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:register")
    token = token_in(client.get(url).text)
    future = (timezone.localdate() + timedelta(days=3)).isoformat()
    data = register_data(site, submission=token, sex="", date_of_birth=future)
    page = client.post(url, data).text
    summary = assert_summary_links(page, {"sex": "Sex", "date_of_birth": "Date of birth"})
    assert "This date is in the future." in summary
    assert 'name="screening_number" value="SCR-77"' in page  # typed values are back
    assert 'name="initials" value="QX"' in page
    assert f'name="date_of_birth" value="{future}"' in page
    assert token_in(page) == token  # the same form: its token kept
    assert not Subject.objects.exists()


def test_a_refusal_about_the_whole_form_is_in_the_summary(client, site, coordinator):
    make_subject(site, by=coordinator, screening_number="SCR-77")
    client.force_login(coordinator)
    url = reverse("subjects:register")
    page = client.post(url, register_data(site, submission=token_in(client.get(url).text))).text
    summary = summary_of(page)
    assert "Screening number already exists." in summary
    assert Subject.objects.count() == 1


def test_consent_form_summary_and_values(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    client.force_login(coordinator)
    url = reverse("subjects:consent", args=[subject.subject_identifier])
    today = timezone.localdate().isoformat()
    page = client.post(url, {"consent_date": today, "consent_version": ""}).text
    assert_summary_links(page, {"consent_version": "Consent form version"})
    assert f'name="consent_date" value="{today}"' in page


def test_demographics_form_summary_and_values(client, subject, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:edit", args=[subject.subject_identifier])
    data = {
        "screening_number": "SCR-NEW",
        "screening_date": subject.screening_date.isoformat(),
        "date_of_birth": "1965-05-17",
        "sex": "F",
        "initials": "",
        "reason": "",
    }
    page = client.post(url, data).text
    assert_summary_links(page, {"reason": "Reason for change"})
    assert 'name="screening_number" value="SCR-NEW"' in page
    assert '<option value="F" selected>' in page


def test_status_form_summary_and_values(client, subject, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:status", args=[subject.subject_identifier])
    today = timezone.localdate().isoformat()
    page = client.post(url, {"status": "screen_failed", "on_date": today, "reason": ""}).text
    assert_summary_links(page, {"reason": "Reason for change"})
    assert f'name="on_date" value="{today}"' in page
    assert '<option value="screen_failed" selected>' in page


def test_delete_form_summary(client, subject, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:delete", args=[subject.subject_identifier])
    page = client.post(url, {"reason": "  "}).text
    assert_summary_links(page, {"reason": "Why was this subject registered in error?"})
    assert Subject.objects.filter(pk=subject.pk).exists()


def test_ae_form_summary_and_values(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    token = token_in(client.get(url).text)
    data = ae_data(
        submission=token,
        outcome="",
        verbatim_term="High blood pressure at home",
        treatment_given="on",
        treatment_details="Amlodipine 5 mg",
        serious="on",
    )
    page = client.post(url, data).text
    summary = assert_summary_links(page, {"outcome": "Outcome"})
    assert 'value="High blood pressure at home"' in page
    assert "Amlodipine 5 mg</textarea>" in page
    assert f'<option value="{hypertension()}" selected>' in page
    assert token_in(page) == token
    # A refusal of the service names its field too (a serious AE without a criterion).
    page = client.post(url, data | {"outcome": "not_recovered"}).text
    summary = summary_of(page)
    assert '<a href="#id_serious">Serious</a>' in summary
    assert "A serious event needs at least one seriousness criterion." in summary
    assert not AdverseEvent.objects.exists()


def test_sae_report_form_summary(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    ae = record_adverse_event(
        subject,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=3,
        onset_date=days_ago(2),
        ongoing=True,
        outcome="not_recovered",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=timezone.now() - timedelta(hours=3),
    )
    client.force_login(coordinator)
    url = reverse("adverse_events:report", args=[subject.subject_identifier, ae.ae_number])
    page = client.post(url, {"reported_at": "yesterday"}).text
    summary = assert_summary_links(
        page, {"reported_at": f"Reported to the sponsor at ({site.time_zone} time)"}
    )
    assert "Enter a valid date/time." in summary
    assert 'name="reported_at" value="yesterday"' in page


def test_query_pages_summary_and_values(client, subject, coordinator, data_manager):
    client.force_login(data_manager)
    record = f"{ContentType.objects.get_for_model(Subject).pk}:{subject.pk}"
    url = f"{reverse('queries:raise')}?record={record}"
    page = client.post(url, {"field": "date_of_birth", "message": ""}).text
    assert_summary_links(page, {"message": "Question to the site"})
    assert '<option value="date_of_birth" selected>' in page
    query = query_services.raise_query(
        subject, field="", message="Please check the screening date.", user=data_manager
    )
    client.force_login(coordinator)
    act = reverse("queries:act", args=[query.pk, "answer"])
    page = client.post(act, {"answer-reason": "", "answer-text": "Checked"}).text
    assert_summary_links(page, {"answer-reason": "Response"})
    assert "Checked</textarea>" in page


def test_valid_forms_show_no_summary(client, site, coordinator):
    client.force_login(coordinator)
    page = client.get(reverse("subjects:register")).text
    assert summary_of(page) == ""
    assert 'form.querySelectorAll("button' in page  # the submit button is disabled on submit


# --- one record per submitted form ----------------------------------------------------------------


def test_a_double_click_on_save_ae_makes_one_ae(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    page = client.get(url).text
    assert "Save AE</button>" in page
    data = ae_data(submission=token_in(page))
    first = client.post(url, data)
    second = client.post(url, data)
    ae = AdverseEvent.objects.get()  # one
    assert first.status_code == 302
    assert second.status_code == 302 and second.url == ae.get_absolute_url()
    followed = client.get(second.url).text
    assert "already been saved" in followed and "nothing was recorded twice" in followed
    # A new form is a new token: a second AE on purpose is recorded.
    client.post(url, ae_data(submission=token_in(client.get(url).text)))
    assert AdverseEvent.objects.count() == 2


def test_a_double_click_on_register_makes_one_subject(client, site, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:register")
    data = register_data(site, submission=token_in(client.get(url).text))
    first = client.post(url, data)
    second = client.post(url, data, follow=True)
    subject = Subject.objects.get()  # one
    assert first.url == subject.get_absolute_url()
    assert second.redirect_chain[-1][0] == subject.get_absolute_url()
    assert "already been saved" in second.text


def test_a_refused_save_leaves_the_token_for_the_corrected_form(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    client.force_login(coordinator)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    token = token_in(client.get(url).text)
    refused = client.post(url, ae_data(submission=token, serious="on"))  # no criterion
    assert refused.status_code == 200
    assert not SubmissionToken.objects.exists()
    saved = client.post(url, ae_data(submission=token))
    assert saved.status_code == 302
    assert AdverseEvent.objects.count() == 1


def test_a_form_without_its_token_saves_nothing_and_gets_a_fresh_one(client, site, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:register")
    page = client.post(url, register_data(site)).text
    assert "This form is out of date or was altered" in summary_of(page)
    assert not Subject.objects.exists()
    fresh = token_in(page)
    assert client.post(url, register_data(site, submission=fresh)).status_code == 302
    assert Subject.objects.count() == 1


def test_tokens_older_than_a_day_are_purged(client, site, coordinator):
    old = SubmissionToken.objects.create(
        key=uuid.uuid4(), user=coordinator, created=timezone.now() - timedelta(days=2)
    )
    recent = SubmissionToken.objects.create(key=uuid.uuid4(), user=coordinator)
    client.force_login(coordinator)
    url = reverse("subjects:register")
    client.post(url, register_data(site, submission=token_in(client.get(url).text)))
    assert not SubmissionToken.objects.filter(pk=old.pk).exists()
    assert SubmissionToken.objects.filter(pk=recent.pk).exists()


def test_another_users_token_does_not_reveal_their_record(client, site, coordinator):
    client.force_login(coordinator)
    url = reverse("subjects:register")
    data = register_data(site, submission=token_in(client.get(url).text))
    client.post(url, data)
    colleague = make_user(Role.SITE_STAFF, site)
    client.force_login(colleague)
    response = client.post(url, data | {"screening_number": "SCR-78"})
    assert response.url == reverse("subjects:list")
    assert Subject.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_make_one_ae_and_one_subject():
    site = make_site("601")
    coordinator = make_user(Role.SITE_STAFF, site)
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))

    def clicks(url, data, times=2):
        clients = []
        for _ in range(times):
            browser_tab = Client()
            browser_tab.force_login(coordinator)
            clients.append(browser_tab)
        return run_at_once([lambda c=c: c.post(url, data) for c in clients])

    ae_url = reverse("adverse_events:new", args=[subject.subject_identifier])
    responses = clicks(ae_url, ae_data(submission=str(uuid.uuid4())))
    assert [r.status_code for r in responses] == [302, 302], responses
    assert AdverseEvent.objects.count() == 1
    ae = AdverseEvent.objects.get()
    assert ae.history.count() == 1
    assert ae.get_absolute_url() in {r.url for r in responses}  # the second: to the first's AE

    register_url = reverse("subjects:register")
    responses = clicks(register_url, register_data(site, submission=str(uuid.uuid4())), times=3)
    assert [r.status_code for r in responses] == [302, 302, 302], responses
    registered = Subject.objects.exclude(pk=subject.pk)
    assert registered.count() == 1
    assert {r.url for r in responses} == {registered.get().get_absolute_url()}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_double_click_in_the_browser_makes_one_ae(page, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    log_in(page, coordinator.username, PASSWORD)
    url = reverse("adverse_events:new", args=[subject.subject_identifier])
    # The page's script disables "Save AE" once the form is on its way (sending held here).
    page.goto(url)
    page.evaluate(
        "document.querySelector('form.crf')"
        ".addEventListener('submit', function (e) { e.preventDefault(); })"
    )
    page.click("main button:has-text('Save AE')")
    page.wait_for_function("document.querySelector('form.crf button[type=submit]').disabled")
    # The server's token is the guarantee: a real double click, sent twice or not.
    page.goto(url)
    page.select_option("#id_term", str(hypertension()))
    page.select_option("#id_grade", "2")
    page.fill("#id_onset_date", days_ago(1).isoformat())
    page.check("#id_ongoing")
    page.select_option("#id_outcome", "not_recovered")
    page.dblclick("main button:has-text('Save AE')")
    page.wait_for_url(f"**{reverse('adverse_events:list', args=[subject.subject_identifier])}")
    assert "AE 1 recorded" in page.locator(".messages").inner_text()
    assert AdverseEvent.objects.count() == 1


# --- error pages in the site's layout -------------------------------------------------------------


def forbidden(request):
    raise PermissionDenied("Read-only.")


def broken(request):
    raise RuntimeError("a bug")


# This module is also the URLconf of the error page tests: the site's URLs and two that fail.
urlpatterns = [
    path("test-forbidden/", forbidden),
    path("test-broken/", broken),
    *site_urlpatterns,
]


@pytest.fixture
def production(settings):
    settings.DEBUG = False
    return settings


def assert_site_layout(html: str):
    assert '<header class="top">' in html and "/static/edc/site.css" in html
    assert SUBJECTS_LINK in html


def test_another_sites_subject_is_a_404_in_the_site_layout(client, production, coordinator):
    other = make_site("202")
    foreign = make_subject(other, by=make_user(Role.SITE_STAFF, other))
    client.force_login(coordinator)
    response = client.get(foreign.get_absolute_url())
    assert response.status_code == 404
    page = response.content.decode()
    assert_site_layout(page)
    assert "Page not found" in page and "Log out" in page  # with the user's navigation
    assert foreign.site.name not in page


@pytest.mark.urls(__name__)
def test_a_403_is_in_the_site_layout(client, production, coordinator):
    client.force_login(coordinator)
    response = client.get("/test-forbidden/")
    assert response.status_code == 403
    page = response.content.decode()
    assert_site_layout(page)
    assert "Not allowed" in page and "Read-only." in page


@pytest.mark.urls(__name__)
def test_a_500_is_in_the_site_layout(production, coordinator):
    client = Client(raise_request_exception=False)
    client.force_login(coordinator)
    response = client.get("/test-broken/")
    assert response.status_code == 500
    page = response.content.decode()
    assert_site_layout(page)
    assert "Something went wrong on our side" in page and "a bug" not in page


def test_the_500_page_needs_no_database(production, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = server_error(RequestFactory().get("/subjects/"))
    assert response.status_code == 500
    assert_site_layout(response.content.decode())
