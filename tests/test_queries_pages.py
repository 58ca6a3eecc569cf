"""The site pages of the data queries: the inbox of a user's sites, one query and its thread, the
transitions each user may make (and only those), answering in place on a CRF page, raising by
hand on one record or many subjects, the report, and the subject page's panel."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from adverse_events.models import CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from queries import services
from queries.models import DataQuery, MessageKind, QueryStatus, Resolution, ResponseReason
from queries.sweep import run_edit_checks
from subjects import services as subject_services
from subjects.models import SubjectStatus

from .builders import (
    days_ago,
    make_eligible_assessment,
    make_randomized_subject,
    make_subject,
    make_user,
    token_in,
    write_forms,
)

pytestmark = pytest.mark.django_db

STALE = "SUBJ-005"  # a subject still in screening more than 28 days after consent


def stale_subject(site, by, *, consented_days_ago=40):
    """A subject in screening whose consent is old enough for the edit check SUBJ-005."""
    return make_subject(site, by=by, consent_date=days_ago(consented_days_ago))


def sweep(*subjects, days_back=0):
    """Run SUBJ-005 over these subjects as if it were ``days_back`` days ago."""
    run_edit_checks(
        subject_ids=[s.pk for s in subjects],
        codes=[STALE],
        now=timezone.now() - timedelta(days=days_back),
    )


def system_query(subject) -> DataQuery:
    return DataQuery.objects.get(subject=subject, check_code=STALE, status__in=["open", "reopened"])


def answer(client, query, *, text="Randomization is planned for Monday.", **extra):
    return client.post(
        f"/queries/{query.pk}/answer/",
        {"answer-reason": ResponseReason.OTHER, "answer-text": text, **extra},
    )


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site, username="monitor")


@pytest.fixture
def statistician(db):
    return make_user(Role.STATISTICIAN, username="statistician")


@pytest.fixture
def two_sites(site, other_site, coordinator, other_coordinator):
    """A query at site 101 opened 12 days ago and one at site 202 opened today."""
    ours = stale_subject(site, coordinator, consented_days_ago=60)
    theirs = stale_subject(other_site, other_coordinator)
    sweep(ours, days_back=12)
    sweep(theirs)
    return system_query(ours), system_query(theirs)


# --- the inbox --------------------------------------------------------------------------------


def test_the_inbox_shows_only_the_users_sites_oldest_first_with_ages(
    client, site, coordinator, two_sites
):
    ours, theirs = two_sites
    newer = stale_subject(site, coordinator)
    sweep(newer)
    client.force_login(coordinator)
    page = client.get("/queries/")
    assert page.status_code == 200
    rows = [(q.pk, q.age_days) for q in page.context["page"]]
    assert rows == [(ours.pk, 12), (system_query(newer).pk, 0)]
    html = page.content.decode()
    assert f'href="/queries/{ours.pk}/"' in html and f"/queries/{theirs.pk}/" not in html
    assert client.get(f"/queries/{theirs.pk}/").status_code == 404


def test_the_inbox_filters_by_site_and_by_whose_turn_it_is(
    client, data_manager, coordinator, other_site, two_sites
):
    ours, theirs = two_sites
    client.force_login(coordinator)
    answer(client, ours)
    client.force_login(data_manager)

    def listed(**params):
        return [q.pk for q in client.get(f"/queries/?{urlencode(params)}").context["page"]]

    assert listed() == [ours.pk, theirs.pk]
    assert listed(status="answered") == [ours.pk]
    assert listed(status="site") == [theirs.pk]
    assert listed(site=other_site.pk) == [theirs.pk]
    assert listed(site="not a number") == [ours.pk, theirs.pk]


def test_the_nav_links_to_the_inbox(client, coordinator):
    client.force_login(coordinator)
    assert 'href="/queries/">Queries</a>' in client.get("/subjects/").content.decode()


# --- one query: its thread and the transitions -------------------------------------------------


def test_the_site_answers_from_the_detail_page(client, coordinator, two_sites):
    query = two_sites[0]
    client.force_login(coordinator)
    page = client.get(query.get_absolute_url()).content.decode()
    assert "Subject still in screening too long after consent" in page  # the check's title
    assert "consent_date" in page  # the values when raised
    assert write_forms(page) == 1  # the answer form, nothing else
    response = answer(client, query, text="Randomization on Monday.")
    assert response.status_code == 302 and response["Location"] == query.get_absolute_url()
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    last = query.thread.order_by("at", "pk").last()
    assert (last.kind, last.author, last.response_reason, last.text) == (
        MessageKind.ANSWERED,
        coordinator,
        ResponseReason.OTHER,
        "Randomization on Monday.",
    )
    page = client.get(query.get_absolute_url()).content.decode()
    assert "Randomization on Monday." in page and "Other" in page
    assert write_forms(page) == 0  # answered: data management's turn


def test_an_empty_answer_is_a_form_error(client, coordinator, two_sites):
    query = two_sites[0]
    client.force_login(coordinator)
    response = answer(client, query, text="   ")
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN


def test_a_service_refusal_is_a_form_error(client, data_manager, site, coordinator):
    """Reopening a query closed too early is refused while the edit check has opened a newer one
    on the same field: the service's sentence shows on the reopen form."""
    subject = stale_subject(site, coordinator)
    sweep(subject)
    old = system_query(subject)
    services.close_query(old, user=data_manager, text="Will be randomized")
    sweep(subject)  # still in screening: a new query
    client.force_login(data_manager)
    response = client.post(f"/queries/{old.pk}/reopen/", {"reopen-text": "Not randomized yet"})
    assert response.status_code == 200
    assert response.context["forms"][0][0] == "reopen"
    assert "is already open: answer that one" in " ".join(
        response.context["forms"][0][2].non_field_errors()
    )
    old.refresh_from_db()
    assert old.status == QueryStatus.CLOSED


def test_a_transition_the_user_may_not_make_is_refused_with_the_services_sentence(
    client, coordinator, two_sites
):
    query = two_sites[0]
    client.force_login(coordinator)
    response = client.post(f"/queries/{query.pk}/close/", {"close-text": "done"}, follow=True)
    assert "Only data managers and the monitors of site 101" in response.content.decode()
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN


def test_data_management_closes_as_confirmed_correct_only_a_system_query(
    client, data_manager, subject, two_sites
):
    system = two_sites[0]
    manual = services.raise_query(
        subject, field="initials", message="Initials on the log?", user=data_manager
    )
    client.force_login(data_manager)
    assert [name for name, *_ in client.get(system.get_absolute_url()).context["forms"]] == [
        "close",
        "confirm",
        "cancel",
    ]
    assert [name for name, *_ in client.get(manual.get_absolute_url()).context["forms"]] == [
        "close",
        "cancel",
    ]
    response = client.post(f"/queries/{system.pk}/confirm/", {"confirm-text": "Per protocol"})
    assert response.status_code == 302
    system.refresh_from_db()
    assert (system.status, system.resolution) == (QueryStatus.CLOSED, Resolution.CONFIRMED_CORRECT)
    assert [name for name, *_ in client.get(system.get_absolute_url()).context["forms"]] == [
        "reopen"
    ]


def test_another_sites_query_is_not_found(client, other_coordinator, two_sites):
    ours = two_sites[0]
    client.force_login(other_coordinator)
    assert client.get(ours.get_absolute_url()).status_code == 404
    assert answer(client, ours).status_code == 404
    ours.refresh_from_db()
    assert ours.status == QueryStatus.OPEN


def test_a_transition_is_a_post_to_a_known_action(client, coordinator, two_sites):
    query = two_sites[0]
    client.force_login(coordinator)
    response = client.get(f"/queries/{query.pk}/answer/")
    assert response.status_code == 302 and response["Location"] == query.get_absolute_url()
    assert client.post(f"/queries/{query.pk}/approve/", {}).status_code == 404
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN


# --- answering in place on a CRF page ------------------------------------------------------------


@pytest.fixture
def queried_assessment(subject, coordinator, data_manager):
    assessment = make_eligible_assessment(subject, by=coordinator)
    query = services.raise_query(
        assessment, field="ecog", message="ECOG 0 but the notes say 1?", user=data_manager
    )
    return assessment, query


def test_the_crf_page_marks_the_queried_field_and_answers_in_place(
    client, subject, coordinator, queried_assessment
):
    _, query = queried_assessment
    edit_url = f"/subjects/{subject.subject_identifier}/eligibility/edit/"
    client.force_login(coordinator)
    html = client.get(edit_url).content.decode()
    marker = f'data-query="{query.pk}"'
    assert html.count(marker) == 2  # at the field, and in the list at the top
    at_field = html.index('name="ecog"')
    assert html.index(marker, at_field) < html.index('name="life_expectancy_weeks"')
    # the answer is sent with the CRF form (its unsaved changes saved with it)
    assert f'name="answer-query" value="{query.pk}"' in html
    assert "ECOG 0 but the notes say 1?" in html
    response = client.post(
        f"/queries/{query.pk}/answer/",
        {
            "answer-reason": ResponseReason.CONFIRMED_CORRECT,
            "answer-text": "ECOG 0 per the visit notes.",
            "next": edit_url,
        },
    )
    assert response.status_code == 302 and response["Location"] == edit_url
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    html = client.get(edit_url).content.decode()
    assert "Answered" in html and f'name="answer-query" value="{query.pk}"' not in html


def test_next_must_be_a_page_of_this_site(client, coordinator, queried_assessment):
    _, query = queried_assessment
    client.force_login(coordinator)
    response = answer(client, query, next="https://evil.example.org/")
    assert response["Location"] == query.get_absolute_url()


def test_readers_see_the_marker_but_no_answer_form(
    client, subject, sponsor, data_manager, queried_assessment
):
    _, query = queried_assessment
    detail_url = f"/subjects/{subject.subject_identifier}/eligibility/"
    client.force_login(sponsor)
    html = client.get(detail_url).content.decode()
    assert f'data-query="{query.pk}"' in html and "ECOG 0 but the notes say 1?" in html
    assert write_forms(html) == 0 and "Raise a query" not in html
    client.force_login(data_manager)
    html = client.get(detail_url).content.decode()
    assert write_forms(html) == 0 and "Raise a query on this record" in html


def test_a_query_on_a_subject_field_shows_on_the_status_page(client, site, coordinator, two_sites):
    query = two_sites[0]
    subject = query.subject
    client.force_login(coordinator)
    html = client.get(f"/subjects/{subject.subject_identifier}/status/").content.decode()
    assert f'data-query="{query.pk}"' in html
    assert f'id="query-answer-{query.pk}"' in html


def test_the_ae_pages_mark_the_queried_field(client, subject, coordinator, data_manager):
    load_starter_terms()
    ae = record_adverse_event(
        subject,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=days_ago(0),
        ongoing=True,
        outcome="not_recovered",
    )
    query = services.raise_query(
        ae, field="grade", message="Grade 3 in the notes?", user=data_manager
    )
    url = f"/subjects/{subject.subject_identifier}/adverse-events/{ae.ae_number}/"
    client.force_login(coordinator)  # the AE form
    html = client.get(url).content.decode()
    at_grade = html.index('name="grade"')
    assert html.index(f'data-query="{query.pk}"', at_grade) < html.index('name="onset_date"')
    assert f'name="answer-query" value="{query.pk}"' in html
    client.force_login(data_manager)  # the AE read-only
    html = client.get(url).content.decode()
    assert "Grade 3 in the notes?" in html and write_forms(html) == 0
    assert "Raise a query" in html


# --- raising by hand ------------------------------------------------------------------------------


def raise_url(record, **params):
    content_type = ContentType.objects.get_for_model(record)
    return f"/queries/raise/?{urlencode({'record': f'{content_type.pk}:{record.pk}', **params})}"


def test_a_monitor_raises_a_query_on_a_field(client, monitor, subject, queried_assessment):
    assessment, _ = queried_assessment
    back = f"/subjects/{subject.subject_identifier}/eligibility/"
    client.force_login(monitor)
    page = client.get(raise_url(assessment, field="lab_date", next=back))
    assert page.status_code == 200
    assert page.context["form"]["field"].value() == "lab_date"
    data = {
        "field": "lab_date",
        "message": "Lab date differs from the source.",
        "next": back,
        "submission": token_in(page.content.decode()),
    }
    response = client.post(raise_url(assessment, field="lab_date", next=back), data)
    assert response.status_code == 302 and response["Location"] == back
    query = DataQuery.objects.get(field="lab_date")
    assert (query.raised_by, query.check_code, query.status) == (monitor, "", QueryStatus.OPEN)
    again = client.post(raise_url(assessment, field="lab_date", next=back), data)  # double click
    assert again.status_code == 302
    assert DataQuery.objects.filter(field="lab_date").count() == 1


def test_raising_needs_a_record_the_user_sees_and_may_query(
    client, monitor, coordinator, other_site, other_coordinator, subject
):
    client.force_login(monitor)
    assert client.get("/queries/raise/?record=nonsense").status_code == 400
    theirs = make_subject(other_site, by=other_coordinator)
    assert client.get(raise_url(theirs)).status_code == 404
    client.force_login(coordinator)
    html = client.get(raise_url(subject), follow=True).content.decode()
    assert "Only data managers and the monitors of site 101" in html
    assert client.post(raise_url(subject), {"message": "x"}).status_code == 302
    assert not DataQuery.objects.exists()


def test_the_subject_page_lists_its_queries(client, coordinator, data_manager, two_sites):
    query = two_sites[0]
    subject = query.subject
    client.force_login(coordinator)
    html = client.get(subject.get_absolute_url()).content.decode()
    assert f'href="/queries/{query.pk}/"' in html and "Raise a query" not in html
    client.force_login(data_manager)
    html = client.get(subject.get_absolute_url()).content.decode()
    assert "Raise a query" in html


# --- bulk -----------------------------------------------------------------------------------------


def test_bulk_raise_reports_raised_and_skipped(client, data_manager, site, coordinator):
    with_crf = [make_subject(site, by=coordinator) for _ in range(2)]
    for subject in with_crf:
        make_eligible_assessment(subject, by=coordinator, sign=False)
    without = make_subject(site, by=coordinator)
    client.force_login(data_manager)
    page = client.get("/queries/bulk/")
    assert page.status_code == 200
    assert write_forms(page.content.decode()) == 1
    response = client.post(
        "/queries/bulk/",
        {
            "target": "eligibility.eligibilityassessment:hbv_dna_iu_ml",
            "message": "Please give the HBV DNA unit on the lab report.",
            "subjects": [s.pk for s in [*with_crf, without]],
        },
        follow=True,
    )
    text = response.content.decode()
    assert "2 queries raised." in text
    assert "Nothing raised for 1 subject(s) with no eligibility assessment yet: " in text
    assert without.subject_identifier in text
    raised = DataQuery.objects.filter(field="hbv_dna_iu_ml")
    assert sorted(q.subject_id for q in raised) == sorted(s.pk for s in with_crf)


def test_bulk_raise_lists_only_the_subjects_the_user_may_query(
    client, site, monitor, coordinator, other_site, other_coordinator
):
    ours = make_subject(site, by=coordinator)
    theirs = make_subject(other_site, by=other_coordinator)
    client.force_login(monitor)
    listed = [s.pk for s in client.get("/queries/bulk/").context["subjects"]]
    assert listed == [ours.pk]
    response = client.post(
        "/queries/bulk/",
        {"target": "subjects.subject:initials", "message": "Initials?", "subjects": [theirs.pk]},
    )
    assert response.status_code == 200 and "valid choice" in response.content.decode()
    assert not DataQuery.objects.exists()


def test_bulk_raise_needs_a_choice_and_filters_by_status(client, data_manager, site, coordinator):
    screening = make_subject(site, by=coordinator)
    failed = make_subject(site, by=coordinator)
    subject_services.change_status(
        failed, SubjectStatus.SCREEN_FAILED, user=coordinator, reason="x", on_date=days_ago(0)
    )
    client.force_login(data_manager)
    listed = client.get(f"/queries/bulk/?status={SubjectStatus.SCREENING}").context["subjects"]
    assert [s.pk for s in listed] == [screening.pk]
    response = client.post("/queries/bulk/", {"target": "subjects.subject:initials"})
    assert "Choose at least one subject." in response.content.decode()


# --- the report -----------------------------------------------------------------------------------


@pytest.fixture
def known_queries(site, other_site, coordinator, other_coordinator, data_manager):
    """At site 101: three queries closed after 2, 5 and 20 days (by data change), three open
    for 40, 10 and 0 days, one manual query answered today; at 202, one open today."""
    for opened, closed in ((10, 8), (10, 5), (30, 10)):
        subject = stale_subject(site, coordinator, consented_days_ago=60)
        sweep(subject, days_back=opened)
        subject_services.change_status(
            subject, SubjectStatus.SCREEN_FAILED, user=coordinator, reason="x", on_date=days_ago(0)
        )
        sweep(subject, days_back=closed)
    for opened in (40, 10, 0):
        sweep(stale_subject(site, coordinator, consented_days_ago=80), days_back=opened)
    manual = services.raise_query(
        make_subject(site, by=coordinator), field="initials", message="?", user=data_manager
    )
    services.answer_query(manual, user=coordinator, text="OK", reason=ResponseReason.OTHER)
    sweep(stale_subject(other_site, other_coordinator))


def test_the_report_counts_per_site_and_check_and_the_median(client, data_manager, known_queries):
    client.force_login(data_manager)
    response = client.get("/queries/report/")
    assert response.status_code == 200
    context = response.context
    statuses = [value for value, _ in context["statuses"]]
    by_site = {
        row["site__code"]: dict(zip(statuses, row["counts"], strict=True))
        for row in context["by_site"]
    }
    assert by_site["101"] == {
        "open": 3,
        "answered": 1,
        "reopened": 0,
        "closed": 3,
        "cancelled": 0,
    }
    assert by_site["202"]["open"] == 1 and sum(by_site["202"].values()) == 1
    by_check = {row["check_code"]: (row["title"], row["n_total"]) for row in context["by_check"]}
    assert by_check == {
        "": ("Raised by hand", 1),
        STALE: ("Subject still in screening too long after consent", 7),
    }
    assert context["median_days"] == pytest.approx(5.0)
    assert "5.0 days" in response.content.decode()
    assert [q.age_days for q in context["oldest"]] == [40, 10, 0, 0, 0]


def test_the_report_is_scoped_and_draws_the_ages(client, monitor, known_queries):
    client.force_login(monitor)
    response = client.get("/queries/report/")
    assert [row["site__code"] for row in response.context["by_site"]] == ["101"]
    assert response.context["buckets"] == [("0-7 days", 2), ("8-30 days", 1), ("> 30 days", 1)]
    html = response.content.decode()
    chart = html[html.index('<svg class="chart"') : html.index("</svg>")]
    assert chart.count("<rect") == 3
    assert "0-7 days 2; 8-30 days 1; &gt; 30 days 1" in chart


def test_the_report_is_for_the_study_team(client, coordinator, sponsor, known_queries):
    client.force_login(coordinator)
    response = client.get("/queries/report/", follow=True)
    assert "The query report is for the study team." in response.content.decode()
    client.force_login(sponsor)
    assert client.get("/queries/report/").status_code == 200


# --- readers get no write form ------------------------------------------------------------------


def test_readers_get_no_write_form_on_any_query_page(
    client, subject, coordinator, sponsor, statistician, queried_assessment, two_sites
):
    assessment, crf_query = queried_assessment
    answered = two_sites[0]
    client.force_login(coordinator)
    answer(client, answered)
    pages = [
        "/queries/",
        "/queries/report/",
        "/queries/bulk/",
        crf_query.get_absolute_url(),
        answered.get_absolute_url(),
        raise_url(assessment, field="ecog"),
        subject.get_absolute_url(),
        f"/subjects/{subject.subject_identifier}/eligibility/",
        f"/subjects/{subject.subject_identifier}/eligibility/edit/",
    ]
    for reader in (sponsor, statistician):
        client.force_login(reader)
        for url in pages:
            response = client.get(url, follow=True)
            assert response.status_code == 200, (reader, url)
            assert write_forms(response.content.decode()) == 0, (reader, url)
        assert answer(client, crf_query).status_code == 302
        client.post(f"/queries/{answered.pk}/close/", {"close-text": "x"})
    crf_query.refresh_from_db()
    answered.refresh_from_db()
    assert (crf_query.status, answered.status) == (QueryStatus.OPEN, QueryStatus.ANSWERED)


def test_the_sponsor_does_not_see_a_date_of_birth_in_a_query(
    client, sponsor, data_manager, site, coordinator
):
    """SUBJ-002 keeps the date of birth among the offending values: masked for the sponsor."""
    subject = make_randomized_subject(site, by=coordinator)
    born = subject.consent_date - timedelta(days=17 * 365)  # 16 at consent
    subject_services.update_demographics(
        subject, user=coordinator, reason="Typo in the year", date_of_birth=born
    )
    run_edit_checks(subject_ids=[subject.pk], codes=["SUBJ-002"])
    query = DataQuery.objects.get(check_code="SUBJ-002")
    client.force_login(sponsor)
    html = client.get(query.get_absolute_url()).content.decode()
    assert f"{born:%Y-%m-%d}" not in html and "(not shown to your role)" in html
    client.force_login(data_manager)
    assert f"{born:%Y-%m-%d}" in client.get(query.get_absolute_url()).content.decode()
