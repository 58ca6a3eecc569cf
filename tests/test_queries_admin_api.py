"""Data queries in the admin (data managers: monitors and site users are kept out of the admin,
they work on the site's query pages) and in the sponsor API.

The admin lists the queries with filters (status, site, edit check, severity,
age of unresolved queries), closes, confirms, reopens and cancels many at once after asking the
reason, and raises the same query on many subjects; each refusal is reported per query. The API
``/api/v1/queries/`` is read-only, scoped, carries the thread, and never shows the sponsor a date
of birth.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.roles import Role
from queries import services
from queries.models import DataQuery, QueryStatus, Resolution
from queries.sweep import run_edit_checks
from subjects import services as subject_services

from .builders import (
    PASSWORD,
    days_ago,
    make_eligible_subject,
    make_randomized_subject,
    make_subject,
    make_user,
)

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:queries_dataquery_changelist"
BULK = "admin:queries_dataquery_bulk_raise"
NOT_SHOWN = "(not shown to your role)"


# --- data ----------------------------------------------------------------------------------------


def in_screening_since(site, days: int):
    """A subject consented ``days`` ago and still in screening (SUBJ-005 after 28 days)."""
    return make_subject(site, consent_date=days_ago(days), screening_date=days_ago(days))


def sweep_as_of(days: int):
    """The study's edit checks as they ran ``days`` ago (their queries opened then)."""
    return run_edit_checks(now=timezone.now() - timedelta(days=days))


def query_of(subject, code="SUBJ-005") -> DataQuery:
    return DataQuery.objects.get(subject=subject, check_code=code)


@pytest.fixture
def queries(site, other_site, data_manager):
    """Queries at both sites, of known ages: SUBJ-005 opened 40 days ago (101), 20 days ago
    (202) and 3 days ago (101), one opened 40 days ago and cancelled, and a manual one today."""
    old = in_screening_since(site, 80)  # 101-0001
    cancelled = in_screening_since(site, 80)  # 101-0002
    mid = in_screening_since(other_site, 50)  # 202-0001
    new = in_screening_since(site, 35)  # 101-0003
    for days in (40, 20, 3):
        sweep_as_of(days)
    services.cancel_query(query_of(cancelled), user=data_manager, text="Raised in error")
    manual = services.raise_query(
        new, field="sex", message="Please check the sex against the source.", user=data_manager
    )
    return {
        "old": query_of(old),
        "cancelled": query_of(cancelled),
        "mid": query_of(mid),
        "new": query_of(new),
        "manual": manual,
    }


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def listed(client, **params) -> set[int]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200
    return {q.pk for q in response.context["cl"].result_list}


def pks(*queries_) -> set[int]:
    return {q.pk for q in queries_}


def messages_of(response) -> list[str]:
    """The messages the page (after redirects) shows."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def act(client, action, selected, **data):
    """Post an admin action on the changelist (and follow to the page it leads to)."""
    payload = {"action": action, "_selected_action": [q.pk for q in selected], **data}
    return client.post(reverse(CHANGELIST), payload, follow=True)


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site, username="monitor101")


# --- admin: the list and its filters -------------------------------------------------------------


def test_the_changelist_filters_by_status_site_check_severity_and_age(
    client, queries, other_site, data_manager
):
    q = queries
    login(client, data_manager)
    assert listed(client) == pks(*q.values())
    assert listed(client, status__exact="open") == pks(q["old"], q["mid"], q["new"], q["manual"])
    assert listed(client, status__exact="cancelled") == pks(q["cancelled"])
    assert listed(client, site__id__exact=other_site.pk) == pks(q["mid"])
    assert listed(client, check="SUBJ-005") == pks(q["old"], q["cancelled"], q["mid"], q["new"])
    assert listed(client, check="manual") == pks(q["manual"])
    assert listed(client, severity__exact="error") == pks(q["manual"])
    # Age of the unresolved ones: the cancelled query, 40 days old too, is in no bucket.
    assert listed(client, age="0-7") == pks(q["new"], q["manual"])
    assert listed(client, age="8-30") == pks(q["mid"])
    assert listed(client, age="31-") == pks(q["old"])
    assert listed(client, age="31-", site__id__exact=other_site.pk) == set()


def test_the_changelist_shows_age_and_check_and_searches_identifier_and_message(
    client, queries, data_manager
):
    login(client, data_manager)
    page = client.get(reverse(CHANGELIST)).text
    for label in ("SUBJ-005 Subject still in screening too long after consent", "Raised by hand"):
        assert label in page  # the check filter names the checks of the listed queries
    assert '<td class="field-age_display">40</td>' in page
    assert '<td class="field-age_display">20</td>' in page
    assert listed(client, q="202-0001") == pks(queries["mid"])
    assert listed(client, q="against the source") == pks(queries["manual"])


def test_the_change_page_is_read_only_with_the_thread(client, queries, data_manager):
    query = queries["cancelled"]
    login(client, data_manager)
    response = client.get(reverse("admin:queries_dataquery_change", args=[query.pk]))
    assert response.status_code == 200
    assert "Raised in error" in response.text  # the thread: the cancelling message
    assert "still in screening" in response.text  # the thread: the system's first message
    assert 'name="status"' not in response.text and 'name="message"' not in response.text
    before = DataQuery.objects.get(pk=query.pk).status
    client.post(
        reverse("admin:queries_dataquery_change", args=[query.pk]),
        {"status": "open", "change_reason": "x"},
    )
    assert DataQuery.objects.get(pk=query.pk).status == before
    history = client.get(reverse("admin:queries_dataquery_history", args=[query.pk]))
    assert history.status_code == 200 and "Cancelled: Raised in error" in history.text
    assert client.get(reverse("admin:queries_dataquery_add")).status_code == 403


# --- admin: actions with the reason asked first --------------------------------------------------


def test_an_action_asks_the_text_first_and_requires_it(client, queries, data_manager):
    selected = [queries["old"], queries["mid"]]
    login(client, data_manager)
    page = act(client, "close_queries", selected)
    assert page.status_code == 200
    assert "Reason for closing" in page.text and "202-0001" in page.text
    empty = act(client, "close_queries", selected, apply="yes", text="  ")
    assert empty.status_code == 200 and "This field is required" in empty.text
    assert {q.status for q in DataQuery.objects.filter(pk__in=pks(*selected))} == {"open"}

    done = act(client, "close_queries", selected, apply="yes", text="Checked with the site")
    assert done.redirect_chain and done.status_code == 200
    assert messages_of(done) == [f"Closed 2 queries: {queries['old'].pk}, {queries['mid'].pk}."]
    for query in selected:
        query.refresh_from_db()
        assert (query.status, query.resolution) == (QueryStatus.CLOSED, Resolution.CLOSED)
        assert query.thread.last().text == "Checked with the site"
        assert query.thread.last().author == data_manager


def test_each_refusal_is_reported_per_query_and_the_rest_is_applied(client, queries, data_manager):
    q = queries
    login(client, data_manager)
    reopen = act(
        client, "reopen_queries", [q["cancelled"], q["old"]], apply="yes", text="Not settled"
    )
    assert messages_of(reopen) == [  # in the order of the queries
        f"Not reopened: Query {q['old'].pk} is open: it cannot be reopened.",
        f"Not reopened: Query {q['cancelled'].pk} is cancelled: it cannot be reopened.",
    ]
    confirm = act(
        client,
        "close_confirmed_correct",
        [q["old"], q["manual"]],
        apply="yes",
        text="Screening extended per the protocol amendment",
    )
    assert messages_of(confirm) == [
        f"Closed as confirmed correct 1 query: {q['old'].pk}.",
        f"Not closed as confirmed correct: Query {q['manual'].pk}: Only an edit check's query "
        "is closed as confirmed correct: close a manual query with a plain close.",
    ]
    q["old"].refresh_from_db()
    assert q["old"].resolution == Resolution.CONFIRMED_CORRECT
    assert DataQuery.objects.get(pk=q["manual"].pk).status == QueryStatus.OPEN
    cancel = act(client, "cancel_queries", [q["manual"]], apply="yes", text="Duplicate")
    assert messages_of(cancel) == [f"Cancelled 1 query: {q['manual'].pk}."]


def test_confirming_a_value_corrected_meanwhile_reports_the_query_resolved(
    client, queries, coordinator, data_manager
):
    query = queries["new"]
    subject_services.change_status(
        query.subject,
        "screen_failed",
        user=coordinator,
        reason="Screen failure",
        on_date=days_ago(1),
    )  # (the sweep has not run since)
    login(client, data_manager)
    response = act(client, "close_confirmed_correct", [query], apply="yes", text="Confirmed")
    assert messages_of(response) == [
        f"Not closed as confirmed correct: Query {query.pk} was resolved by a data change "
        "meanwhile."
    ]
    query.refresh_from_db()
    assert (query.status, query.resolution) == (
        QueryStatus.CLOSED,
        Resolution.RESOLVED_BY_DATA_CHANGE,
    )


def test_answering_is_not_an_admin_action(client, queries, data_manager):
    login(client, data_manager)
    page = client.get(reverse(CHANGELIST))
    offered = [name for name, _ in page.context["action_form"].fields["action"].choices if name]
    assert offered == [
        "close_queries",
        "close_confirmed_correct",
        "reopen_queries",
        "cancel_queries",
    ]
    response = act(client, "answer_query", [queries["old"]], apply="yes", text="Corrected")
    assert "No action selected." in messages_of(response)
    assert DataQuery.objects.get(pk=queries["old"].pk).status == QueryStatus.OPEN


def _force_staff(*users):
    """As if "staff status" were set by hand: the admin still keeps these users out."""
    for user in users:
        type(user).objects.filter(pk=user.pk).update(is_staff=True)


def test_monitors_and_site_staff_are_refused_by_the_queries_admin(
    client, queries, monitor, coordinator
):
    """They raise, answer and close queries on the site's pages; the admin is not theirs."""
    _force_staff(monitor, coordinator)
    for user in (monitor, coordinator):
        login(client, user)
        for url in (
            reverse(CHANGELIST),
            reverse(BULK),
            reverse("admin:queries_dataquery_change", args=[queries["old"].pk]),
        ):
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
        act(client, "close_queries", [queries["old"]], apply="yes", text="Done")
        client.post(
            reverse(BULK),
            {"model": "subjects.subject", "field": "status", "message": "Check"},
        )
    assert DataQuery.objects.get(pk=queries["old"].pk).status == QueryStatus.OPEN
    assert DataQuery.objects.count() == len(queries)


# --- admin: bulk raise ---------------------------------------------------------------------------


def test_bulk_raise_raises_on_each_record_and_reports_subjects_without_it(
    client, site, data_manager
):
    with_crf = make_eligible_subject(site)  # 101-0001
    without = make_subject(site)  # 101-0002: no eligibility CRF yet
    login(client, data_manager)
    assert reverse(BULK) in client.get(reverse(CHANGELIST)).text  # linked from the list
    form = client.get(reverse(BULK), {"model": "eligibility.eligibilityassessment"})
    assert form.status_code == 200 and 'value="ecog"' in form.text
    assert "101-0001" in form.text and "101-0002" in form.text

    response = client.post(
        reverse(BULK),
        {
            "model": "eligibility.eligibilityassessment",
            "field": "ecog",
            "message": "Please confirm the ECOG against the clinic note.",
            "subjects": [with_crf.pk, without.pk],
        },
        follow=True,
    )
    assert response.redirect_chain[-1][0] == reverse(CHANGELIST)
    raised = DataQuery.objects.get()
    assert (raised.subject, raised.field, raised.raised_by) == (with_crf, "ecog", data_manager)
    assert messages_of(response) == [
        f"Raised 1 query: 101-0001 (query {raised.pk}).",
        "No eligibility assessment yet, nothing raised: 101-0002.",
    ]


def test_bulk_raise_requires_a_message_and_a_field_of_the_record(client, site, data_manager):
    subject = make_subject(site)
    login(client, data_manager)
    data = {"model": "subjects.subject", "field": "sex", "subjects": [subject.pk]}
    no_message = client.post(reverse(BULK), {**data, "message": ""})
    assert no_message.status_code == 200 and "This field is required" in no_message.text
    wrong_field = client.post(reverse(BULK), {**data, "field": "ecog", "message": "Check"})
    assert wrong_field.status_code == 200 and "Select a valid choice" in wrong_field.text
    assert not DataQuery.objects.exists()


# --- admin: scoping ------------------------------------------------------------------------------


def test_a_monitor_of_101_sees_no_query_in_the_admin_not_even_of_101(
    client, queries, other_site, monitor
):
    _force_staff(monitor)
    foreign = queries["mid"]
    version = foreign.history.first()
    login(client, monitor)
    for url in (
        reverse(CHANGELIST),
        reverse("admin:queries_dataquery_change", args=[foreign.pk]),
        reverse("admin:queries_dataquery_history", args=[foreign.pk]),
        reverse("admin:queries_dataquery_simple_history", args=[foreign.pk, version.pk]),
        reverse("admin:queries_dataquery_change", args=[queries["old"].pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302, url
        assert "202-0001" not in response.text and "101-0001" not in response.text


def date_of_birth_query(site, coordinator):
    """SUBJ-002: a randomized subject whose date of birth, corrected afterwards, makes them 90
    at consent; the query's offending values hold the date of birth."""
    subject = make_randomized_subject(site, by=coordinator)
    subject_services.update_demographics(
        subject, user=coordinator, reason="Transcription error", date_of_birth=date(1930, 2, 3)
    )
    run_edit_checks(codes=["SUBJ-002"])
    query = query_of(subject, "SUBJ-002")
    assert query.value_snapshot["date_of_birth"] == "1930-02-03"
    return query


def test_the_sponsor_does_not_see_a_date_of_birth_in_the_admin(
    client, site, coordinator, sponsor, data_manager
):
    """The sponsor does not use the admin at all (even with "staff status" set by hand); the
    data manager sees the query's values and their audit trail."""
    query = date_of_birth_query(site, coordinator)
    _force_staff(sponsor)
    url = reverse("admin:queries_dataquery_change", args=[query.pk])
    version_url = reverse(
        "admin:queries_dataquery_simple_history", args=[query.pk, query.history.first().pk]
    )
    login(client, sponsor)
    for page in (client.get(url), client.get(version_url)):
        assert page.status_code == 302 and "1930-02-03" not in page.text
    login(client, data_manager)
    assert "1930-02-03" in client.get(url).text and "1930-02-03" in client.get(version_url).text


# --- the API -------------------------------------------------------------------------------------


def api(user=None):
    client = APIClient()
    if user is not None:
        token = Token.objects.get_or_create(user=user)[0]
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_the_api_lists_queries_with_their_thread(queries, sponsor):
    rows = {r["id"]: r for r in api(sponsor).get("/api/v1/queries/").json()["results"]}
    assert set(rows) == pks(*queries.values())
    cancelled = rows[queries["cancelled"].pk]
    subject = queries["cancelled"].subject
    assert {k: v for k, v in cancelled.items() if k not in ("thread", "message")} == {
        "id": queries["cancelled"].pk,
        "subject": "101-0002",
        "site": "101",
        "record_type": "subjects.subject",
        "object_id": subject.pk,
        "field": "status",
        "record_label": "101-0002",
        "check_code": "SUBJ-005",
        "severity": "warning",
        "raised_by": "edc-system",
        "value_snapshot": {"status": "screening", "consent_date": days_ago(80).isoformat()},
        "status": "cancelled",
        "resolution": "",
        "opened_at": cancelled["opened_at"],
        "closed_at": cancelled["closed_at"],
        "updated": cancelled["updated"],
    }
    assert cancelled["closed_at"] is not None
    assert [(m["kind"], m["author"], m["text"]) for m in cancelled["thread"]] == [
        ("raised", "edc-system", cancelled["message"]),
        ("cancelled", "dm", "Raised in error"),
    ]
    assert set(cancelled["thread"][0]) == {"kind", "author", "at", "text", "response_reason"}
    manual = rows[queries["manual"].pk]
    assert (manual["check_code"], manual["raised_by"], manual["field"]) == ("", "dm", "sex")
    detail = api(sponsor).get(f"/api/v1/queries/{queries['manual'].pk}/")
    assert detail.status_code == 200 and detail.json() == manual


def test_the_api_filters_by_site_status_check_subject_and_updated_since(queries, sponsor):
    q = queries
    client = api(sponsor)
    url = "/api/v1/queries/"
    assert ids(client.get(url, {"site": "202"})) == pks(q["mid"])
    assert ids(client.get(url, {"status": "cancelled"})) == pks(q["cancelled"])
    assert ids(client.get(url, {"check_code": ""})) == pks(q["manual"])  # raised by hand
    assert ids(client.get(url, {"check_code": "SUBJ-005", "site": "101"})) == pks(
        q["old"], q["cancelled"], q["new"]
    )
    assert ids(client.get(url, {"subject": "101-0003"})) == pks(q["new"], q["manual"])
    assert ids(client.get(url, {"updated_since": "2999-01-01T00:00:00Z"})) == set()
    since = DataQuery.objects.get(pk=q["manual"].pk).updated.isoformat()
    assert q["manual"].pk in ids(client.get(url, {"updated_since": since}))
    assert client.get(url, {"updated_since": "yesterday"}).status_code == 400
    assert client.get(url, {"status": "lost"}).status_code == 400


def test_the_api_is_scoped_read_only_and_for_the_study_team(queries, monitor, coordinator):
    client = api(monitor)
    assert ids(client.get("/api/v1/queries/")) == pks(
        queries["old"], queries["cancelled"], queries["new"], queries["manual"]
    )
    assert client.get(f"/api/v1/queries/{queries['mid'].pk}/").status_code == 404
    assert client.post("/api/v1/queries/", {}).status_code == 405
    assert client.delete(f"/api/v1/queries/{queries['old'].pk}/").status_code == 405
    assert client.patch(f"/api/v1/queries/{queries['old'].pk}/", {}).status_code == 405
    denied = api(coordinator).get("/api/v1/queries/")
    assert denied.status_code == 403 and "sponsor exports" in denied.json()["detail"]
    assert api().get("/api/v1/queries/").status_code == 401


def test_the_sponsor_gets_no_date_of_birth_from_the_api(site, coordinator, sponsor, data_manager):
    query = date_of_birth_query(site, coordinator)
    response = api(sponsor).get("/api/v1/queries/", {"check_code": "SUBJ-002"})
    assert response.status_code == 200 and b"1930-02-03" not in response.content
    [row] = response.json()["results"]
    assert row["value_snapshot"]["date_of_birth"] == NOT_SHOWN
    assert row["value_snapshot"]["consent_date"] == query.value_snapshot["consent_date"]
    [row] = api(data_manager).get("/api/v1/queries/", {"check_code": "SUBJ-002"}).json()["results"]
    assert row["value_snapshot"]["date_of_birth"] == "1930-02-03"


def test_the_number_of_database_queries_does_not_grow_with_the_rows(
    site, data_manager, sponsor, django_assert_max_num_queries
):
    client = api(sponsor)

    def raise_on_new_subjects(n):
        for _ in range(n):
            query = services.raise_query(
                make_subject(site), field="sex", message="Check", user=data_manager
            )
            services.close_query(query, user=data_manager, text="Fine")

    raise_on_new_subjects(2)
    with CaptureQueriesContext(connection) as few:
        assert len(ids(client.get("/api/v1/queries/"))) == 2
    raise_on_new_subjects(8)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(ids(client.get("/api/v1/queries/"))) == 10
