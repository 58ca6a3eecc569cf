"""The dashboard: per site and study-wide figures over the sites the user sees, each chart with a
text alternative, read-only, and a number of SQL queries that does not grow with the data."""

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from adverse_events.models import CtcaeTerm
from adverse_events.services import record_adverse_event
from core.registry import subject_changes_unannounced
from core.roles import Role
from queries import services as query_services
from queries.models import DataQuery
from randomization.models import Allocation
from subjects import services as subject_services
from subjects.models import SubjectStatus

from .builders import (
    days_ago,
    make_randomized_subject,
    make_site,
    make_subject,
    make_user,
    site_today,
    write_forms,
)

pytestmark = pytest.mark.usefixtures("ctcae")


def month_start(months_back: int) -> date:
    """The first day of the month ``months_back`` months before this one."""
    month = site_today().replace(day=1)
    for _ in range(months_back):
        month = (month - timedelta(days=1)).replace(day=1)
    return month


def consented_on(site, by, when: date):
    return make_subject(site, by=by, consent_date=when, screening_date=when)


def open_query(subject, user, *, days_open: int) -> DataQuery:
    """A manual query opened ``days_open`` days and an hour ago (the clock set back)."""
    then = timezone.now() - timedelta(days=days_open, hours=1)
    with mock.patch("django.utils.timezone.now", return_value=then):
        return query_services.raise_query(subject, field="initials", message="Check?", user=user)


def sae(subject, user, *, hours_since_aware: int):
    return record_adverse_event(
        subject,
        user=user,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=3,
        onset_date=days_ago(2),
        ongoing=True,
        outcome="not_recovered",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=timezone.now() - timedelta(hours=hours_since_aware),
    )


def add_batch(site, by, data_manager, *, randomized: int = 1):
    """More of everything at ``site``: a waiting subject, queries, SAEs, randomized subjects."""
    waiting = consented_on(site, by, month_start(1))
    for days in (2, 12, 40):
        open_query(waiting, data_manager, days_open=days)
    sae(waiting, by, hours_since_aware=30)
    sae(waiting, by, hours_since_aware=20)
    for _ in range(randomized):
        make_randomized_subject(site, by=by)


@pytest.fixture
def study(site, other_site, coordinator, other_coordinator, data_manager):
    """At 101: a screen failure consented two months ago, subjects waiting since last month and
    this month, one not consented, two randomized today; queries open 2, 10, 45 days (and one
    cancelled); SAEs overdue, due soon and pending. At 202: one waiting subject with a query
    open 50 days, an overdue SAE and one randomized subject. Edit checks do not run (quiet)."""
    with subject_changes_unannounced():
        failed = consented_on(site, coordinator, month_start(2))
        subject_services.change_status(
            failed, SubjectStatus.SCREEN_FAILED, user=coordinator, reason="x", on_date=days_ago(0)
        )
        waiting_old = consented_on(site, coordinator, month_start(1))
        waiting_new = consented_on(site, coordinator, month_start(0))
        make_subject(site, by=coordinator, consented=False)
        randomized = [make_randomized_subject(site, by=coordinator) for _ in range(2)]
        for days in (2, 10, 45):
            open_query(waiting_old, data_manager, days_open=days)
        cancelled = open_query(waiting_new, data_manager, days_open=45)
        query_services.cancel_query(cancelled, user=data_manager, text="Raised in error")
        overdue = sae(waiting_old, coordinator, hours_since_aware=25)
        due_soon = sae(waiting_old, coordinator, hours_since_aware=20)
        sae(waiting_old, coordinator, hours_since_aware=2)  # pending: neither list

        foreign = consented_on(other_site, other_coordinator, month_start(1))
        open_query(foreign, data_manager, days_open=50)
        foreign_sae = sae(foreign, other_coordinator, hours_since_aware=30)
        foreign_randomized = make_randomized_subject(other_site, by=other_coordinator)
    return {
        "waiting": [waiting_old, waiting_new],
        "randomized": randomized,
        "overdue": overdue,
        "due_soon": due_soon,
        "foreign": foreign,
        "foreign_sae": foreign_sae,
        "foreign_randomized": foreign_randomized,
    }


def dashboard(client, user, query: str = ""):
    client.force_login(user)
    response = client.get(f"/dashboard/{query}")
    assert response.status_code == 200
    return response, response.content.decode()


def statuses(response) -> dict:
    return {value: n for value, _, n in response.context["by_status"] if n}


def arms_per_site(*sites) -> dict:
    """The randomized subjects per (site, arm), read from the allocations themselves."""
    return dict(
        Counter(
            (a.subject.site.code, a.arm)
            for a in Allocation.objects.select_related("subject__site")
            if a.subject.site.code in sites
        )
    )


def test_subjects_by_status_and_the_waiting_list(client, coordinator, study):
    response, html = dashboard(client, coordinator)
    assert statuses(response) == {"screening": 3, "screen_failed": 1, "randomized": 2}
    assert response.context["subject_total"] == 6
    waiting = response.context["waiting"]
    assert waiting == study["waiting"]  # the longest waiting first; the unconsented not at all
    today = site_today()
    assert [s.days_waiting for s in waiting] == [
        (today - month_start(1)).days,
        (today - month_start(0)).days,
    ]
    assert response.context["waiting_total"] == 2
    assert f'href="{study["waiting"][0].get_absolute_url()}"' in html


def test_the_waiting_list_shows_the_ten_waiting_longest(client, coordinator, site):
    with subject_changes_unannounced():
        subjects = [consented_on(site, coordinator, days_ago(n)) for n in range(12, 0, -1)]
    response, html = dashboard(client, coordinator)
    assert response.context["waiting"] == subjects[:10]
    assert response.context["waiting_total"] == 12
    assert "the 10 waiting longest" in html


def test_open_queries_by_age(client, coordinator, data_manager, study):
    response, html = dashboard(client, coordinator)
    assert response.context["query_ages"] == [
        ("0-7 days", 1),
        ("8-30 days", 1),
        ("> 30 days", 1),
    ]
    response, _ = dashboard(client, data_manager)
    assert response.context["query_ages"] == [
        ("0-7 days", 1),
        ("8-30 days", 1),
        ("> 30 days", 2),
    ]


def test_sae_reports_overdue_and_due_soon(client, coordinator, data_manager, study):
    response, html = dashboard(client, coordinator)
    sae = response.context["sae"]
    assert [row.ae for row in sae["overdue"]] == [study["overdue"]]
    assert [row.ae for row in sae["due_soon"]] == [study["due_soon"]]
    assert '<span class="figure" id="sae-overdue">1</span>' in html

    response, _ = dashboard(client, data_manager)
    assert [row.ae for row in response.context["sae"]["overdue"]] == [
        study["foreign_sae"],  # aware 30 hours ago: the most overdue first
        study["overdue"],
    ]


def test_the_enrollment_curve(client, coordinator, data_manager, study):
    response, html = dashboard(client, coordinator)
    assert response.context["curve"] == [
        {"month": month_start(2), "consented": 1, "randomized": 0},
        {"month": month_start(1), "consented": 2, "randomized": 0},
        {"month": month_start(0), "consented": 5, "randomized": 2},
    ]
    response, _ = dashboard(client, data_manager)
    assert [(p["consented"], p["randomized"]) for p in response.context["curve"]] == [
        (1, 0),
        (3, 0),
        (7, 3),
    ]


def test_days_waiting_and_the_curve_count_at_the_sites_date(client, data_manager):
    # 20:00 UTC on 31 October is 04:00 on 1 November in Shanghai: consented and randomized on
    # 1 November there, waiting 0 days (UTC's date would make it -1 and the randomization
    # October's, before any consent).
    shanghai = make_site("303", time_zone="Asia/Shanghai")
    staff = make_user(Role.SITE_STAFF, shanghai)
    moment = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=moment):
        with subject_changes_unannounced():
            make_randomized_subject(shanghai, by=staff)
            waiting = make_subject(shanghai, by=staff)
        response, _ = dashboard(client, data_manager)
    assert response.context["curve"] == [
        {"month": date(2026, 11, 1), "consented": 2, "randomized": 1}
    ]
    assert [(s, s.days_waiting) for s in response.context["waiting"]] == [(waiting, 0)]


def test_the_arm_balance_per_site_study_wide(client, coordinator, data_manager, study):
    response, _ = dashboard(client, coordinator)
    expected = arms_per_site("101")
    balance = response.context["balance"]
    assert balance["sites"] == [
        {
            "site": "101",
            "counts": [expected.get(("101", "A"), 0), expected.get(("101", "B"), 0)],
            "total": 2,
        }
    ]

    response, html = dashboard(client, data_manager)
    expected = arms_per_site("101", "202")
    balance = response.context["balance"]
    assert [row["site"] for row in balance["sites"]] == ["101", "202"]
    assert balance["totals"] == [
        sum(n for (_, arm), n in expected.items() if arm == "A"),
        sum(n for (_, arm), n in expected.items() if arm == "B"),
    ]
    assert balance["total"] == 3
    labels = [bar["label"] for bar in response.context["balance_chart"]["bars"]]
    assert "Site 202: arm A" in labels and "All: arm B" in labels


def test_a_coordinator_never_sees_another_sites_figures(
    client, coordinator, other_coordinator, study
):
    response, html = dashboard(client, coordinator, "?site=202")
    assert response.context["scope"].site is None
    assert [s.code for s in response.context["scope"].sites] == ["101"]
    assert "You do not see site 202: the dashboard shows the sites you see." in html
    assert statuses(response) == {"screening": 3, "screen_failed": 1, "randomized": 2}
    assert study["foreign"].subject_identifier not in html
    assert study["foreign_randomized"].subject_identifier not in html
    assert [row["site"] for row in response.context["balance"]["sites"]] == ["101"]
    assert [row.ae for row in response.context["sae"]["overdue"]] == [study["overdue"]]
    assert '<select id="dashboard-site"' not in html  # one site: no filter to offer

    response, html = dashboard(client, other_coordinator)
    assert statuses(response) == {"screening": 1, "randomized": 1}
    assert study["waiting"][0].subject_identifier not in html


def test_study_wide_roles_see_every_site_and_filter_one(client, data_manager, study):
    response, html = dashboard(client, data_manager)
    assert statuses(response) == {"screening": 4, "screen_failed": 1, "randomized": 3}
    assert '<option value="202">' in html

    response, html = dashboard(client, data_manager, "?site=202")
    assert response.context["scope"].site.code == "202"
    assert statuses(response) == {"screening": 1, "randomized": 1}
    assert response.context["waiting"] == [study["foreign"]]
    assert response.context["query_ages"][2] == ("> 30 days", 1)
    assert [row.ae for row in response.context["sae"]["overdue"]] == [study["foreign_sae"]]
    assert [row["site"] for row in response.context["balance"]["sites"]] == ["202"]


def test_a_monitor_sees_the_sites_they_monitor(client, site, study):
    monitor = make_user(Role.MONITOR, site)
    response, html = dashboard(client, monitor)
    assert [s.code for s in response.context["scope"].sites] == ["101"]
    assert statuses(response) == {"screening": 3, "screen_failed": 1, "randomized": 2}
    assert study["foreign"].subject_identifier not in html


def test_the_charts_are_svg_with_text_alternatives(client, data_manager, study):
    _, html = dashboard(client, data_manager)
    for chart, table in (
        ("query-age-chart", "query-ages"),
        ("enrollment-chart", "enrollment"),
        ("balance-chart", "balance"),
    ):
        assert '<svg class="chart' in html and f'id="{chart}" role="img"' in html
        assert f'aria-labelledby="{chart}-title"' in html
        assert f'<title id="{chart}-title">' in html
        assert f'<table class="counts" id="{table}">' in html
    assert "0-7 days 1; 8-30 days 1; &gt; 30 days 2" in html
    assert "7 consented, 3 randomized" in html
    # The charts are drawn by the server: the page's only script is the idle-session warning of
    # every signed-in page (base.html), and nothing is loaded from elsewhere.
    scripts = re.findall(r"<script[^>]*>", html)
    assert len(scripts) == 1, scripts
    assert re.search(r'src="/static/edc/session[.\w]*js"', scripts[0]), scripts
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_page_is_read_only_and_in_the_navigation(client, coordinator, study):
    _, html = dashboard(client, coordinator)
    assert write_forms(html) == 0
    client.force_login(coordinator)
    assert '<a href="/dashboard/">Dashboard</a>' in client.get("/subjects/").content.decode()


def test_the_page_needs_a_login(client):
    response = client.get("/dashboard/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_an_empty_study_shows_empty_figures(client, coordinator):
    response, html = dashboard(client, coordinator)
    assert response.context["curve"] == [] and response.context["balance"]["total"] == 0
    assert "Nobody is waiting." in html and "Nobody randomized yet." in html


@pytest.mark.parametrize("role", ["coordinator", "data_manager"])
def test_the_number_of_sql_queries_does_not_grow_with_the_data(
    client, request, site, other_site, coordinator, other_coordinator, data_manager, role, study
):
    user = request.getfixturevalue(role)
    client.force_login(user)
    client.get("/dashboard/")  # warm the caches (content types, session)

    def page_queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/dashboard/").status_code == 200
        return len(captured)

    small = page_queries()
    with subject_changes_unannounced():
        for _ in range(3):
            add_batch(site, coordinator, data_manager, randomized=2)
            add_batch(other_site, other_coordinator, data_manager)
    assert page_queries() == small
    assert small <= 15
