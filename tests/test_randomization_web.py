"""Randomization on the web, in the admin and in the API; concealment of the list."""

import csv
import io

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.registry import subject_changes_unannounced
from core.roles import Role
from randomization.models import Allocation, RandomizationList, Slot
from subjects.models import SubjectStatus

from .builders import (
    PASSWORD,
    ensure_active_list,
    make_eligible_subject,
    make_randomized_subject,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rlist(db):
    return ensure_active_list()


@pytest.fixture
def statistician(db):
    return make_user(Role.STATISTICIAN, username="stats", is_staff=True)


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def randomize_url(subject):
    return reverse("randomization:randomize", args=[subject.subject_identifier])


# --- The "Randomize" action ----------------------------------------------------------------------


def test_subject_page_offers_randomize_then_shows_the_allocation(client, rlist, site, coordinator):
    subject = make_eligible_subject(site, by=coordinator)
    login(client, coordinator)
    page = client.get(subject.get_absolute_url())
    assert "Not randomized." in page.text and randomize_url(subject) in page.text

    confirm = client.get(randomize_url(subject))
    assert confirm.status_code == 200
    assert "S2" in confirm.text and "MVI/EHS absent · ECOG 0 · prior LRT: yes" in confirm.text

    refused = client.post(randomize_url(subject), {"stratum": "S2"})
    assert refused.status_code == 200 and "This field is required" in refused.text
    assert not Allocation.objects.exists()

    done = client.post(randomize_url(subject), {"stratum": "S2", "confirm": "on"}, follow=True)
    allocation = Allocation.objects.get(subject=subject)
    assert allocation.randomization_number == "R2-0001"
    assert "R2-0001" in done.text and allocation.arm_label in done.text
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.RANDOMIZED
    page = client.get(subject.get_absolute_url())
    assert "R2-0001" in page.text and randomize_url(subject) not in page.text


def test_confirmation_refused_when_stratum_changed_since_page_opened(
    client, rlist, site, coordinator
):
    subject = make_eligible_subject(site, by=coordinator)
    response = login(client, coordinator).post(
        randomize_url(subject), {"stratum": "S4", "confirm": "on"}
    )
    assert response.status_code == 200
    assert "stratification data changed" in response.text
    assert 'value="S2"' in response.text
    assert not Allocation.objects.exists()


def test_page_explains_why_a_subject_cannot_be_randomized(client, site, coordinator):
    subject = make_eligible_subject(site, by=coordinator)
    response = login(client, coordinator).get(randomize_url(subject))
    assert response.status_code == 200
    assert "no active randomization list" in response.text
    assert "<button" not in response.text.split("<main>")[1]


def test_other_site_gets_404_and_monitor_cannot_randomize(client, rlist, site, other_coordinator):
    subject = make_eligible_subject(site)
    assert login(client, other_coordinator).get(randomize_url(subject)).status_code == 404
    assert client.post(randomize_url(subject), {"stratum": "S2", "confirm": "on"}).status_code == (
        404
    )
    monitor = make_user(Role.MONITOR, site)
    client.logout()
    response = login(client, monitor).post(
        randomize_url(subject), {"stratum": "S2", "confirm": "on"}
    )
    assert response.status_code == 403 and "Only site staff and investigators" in response.text
    assert not Allocation.objects.exists()


def test_login_required(client, rlist, site):
    subject = make_eligible_subject(site)
    response = client.get(randomize_url(subject))
    assert response.status_code == 302 and "/accounts/login/" in response.url


# --- Concealment in the admin --------------------------------------------------------------------

CONCEALED_ADMIN_PAGES = [
    "admin:randomization_randomizationlist_changelist",
    "admin:randomization_stratum_changelist",
    "admin:randomization_slot_changelist",
]


@pytest.mark.parametrize("role", [Role.SITE_STAFF, Role.INVESTIGATOR, Role.MONITOR])
def test_site_users_cannot_see_lists_strata_or_slots_in_admin(client, rlist, site, role):
    """Site users have no admin at all (even with is_staff forced on): the concealed pages,
    the slots and the list's downloads send them to the admin login."""
    user = make_user(role, site, is_staff=True)
    type(user).objects.filter(pk=user.pk).update(is_staff=True)
    login(client, user)
    slot = Slot.objects.filter(rlist=rlist).first()
    urls = [reverse(name) for name in CONCEALED_ADMIN_PAGES] + [
        reverse("admin:randomization_slot_change", args=[slot.pk]),
        reverse("admin:randomization_slot_history", args=[slot.pk]),
        *(
            reverse(f"admin:randomization_randomizationlist_{name}", args=[rlist.pk])
            for name in ("csv", "verify")
        ),
        reverse("admin:index"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url


def test_data_manager_and_sponsor_cannot_see_slots(client, rlist, data_manager):
    login(client, data_manager)
    for name in CONCEALED_ADMIN_PAGES:
        assert client.get(reverse(name)).status_code == 403, name


def test_the_data_manager_sees_allocations_without_slot_details(
    client, rlist, site, other_site, coordinator, data_manager
):
    mine = make_randomized_subject(site, by=coordinator)
    theirs = make_randomized_subject(other_site)
    login(client, data_manager)
    listing = client.get(reverse("admin:randomization_allocation_changelist"))
    assert listing.status_code == 200
    assert mine.subject_identifier in listing.text and theirs.subject_identifier in listing.text
    detail = client.get(reverse("admin:randomization_allocation_change", args=[mine.allocation.pk]))
    assert detail.status_code == 200
    assert "Block" not in detail.text and "block" not in detail.text
    # Future slots never appear: the stratum's next number is not shown anywhere.
    used = {mine.allocation.randomization_number, theirs.allocation.randomization_number}
    assert used == {"R2-0001", "R2-0002"}
    assert "R2-0003" not in listing.text and "R2-0003" not in detail.text
    login(client, coordinator)  # site users: no admin
    assert client.get(reverse("admin:randomization_allocation_changelist")).status_code == 302


def test_statistician_sees_list_downloads_csv_and_verifies(client, rlist, site, statistician):
    subject = make_randomized_subject(site)
    login(client, statistician)
    assert client.get(reverse("admin:randomization_slot_changelist")).status_code == 200
    page = client.get(reverse("admin:randomization_randomizationlist_changelist"))
    assert page.status_code == 200 and str(rlist.seed) in page.text
    response = client.get(reverse("admin:randomization_randomizationlist_csv", args=[rlist.pk]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 8 * rlist.slots_per_stratum
    allocated = [r for r in rows if r["subject_identifier"]]
    assert [(r["randomization_number"], r["subject_identifier"]) for r in allocated] == [
        ("R2-0001", subject.subject_identifier)
    ]
    verified = client.get(
        reverse("admin:randomization_randomizationlist_verify", args=[rlist.pk]), follow=True
    )
    assert "OK: list #" in verified.text


def test_admin_balance_report_and_mismatch_column(client, rlist, site, coordinator, data_manager):
    from eligibility import services as eligibility_services

    subject = make_randomized_subject(site, by=coordinator)
    eligibility_services.save_assessment(
        subject, user=coordinator, data={"ecog": 1}, reason="Corrected from source"
    )
    login(client, data_manager)
    listing = client.get(reverse("admin:randomization_allocation_changelist"))
    assert "differs" in listing.text and "Balance report" in listing.text
    report = client.get(reverse("admin:randomization_allocation_balance"))
    assert report.status_code == 200
    assert "ECOG performance status: 0 at randomization, 1 now" in report.text
    assert "Slots left" in report.text
    assert Allocation.objects.get(subject=subject).ecog == 0


def test_allocations_cannot_be_added_or_changed_in_admin(client, rlist, site, statistician):
    subject = make_randomized_subject(site)
    login(client, statistician)
    assert client.get(reverse("admin:randomization_allocation_add")).status_code == 403
    url = reverse("admin:randomization_allocation_change", args=[subject.allocation.pk])
    client.post(url, {"arm": "B", "change_reason": "x"})
    assert Allocation.objects.get(pk=subject.allocation.pk).arm == subject.allocation.arm
    assert client.get(reverse("admin:randomization_randomizationlist_add")).status_code == 403


# --- API -----------------------------------------------------------------------------------------


def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_api_allocations_scoped_and_without_slot_details(rlist, site, other_site, coordinator):
    mine = make_randomized_subject(site, by=coordinator)
    make_randomized_subject(other_site)
    sponsor = make_user(Role.SPONSOR)
    rows = api(sponsor).get("/api/v1/allocations/").json()["results"]
    assert len(rows) == 2
    assert set(rows[0]) == {
        "id",
        "subject",
        "site",
        "randomization_number",
        "arm",
        "allocated_at",
        "macrovascular_or_extrahepatic",
        "ecog",
        "prior_locoregional_therapy",
        "stratum",
    }  # never a slot, a block or the list's seed
    monitor = make_user(Role.MONITOR, site)
    rows = api(monitor).get("/api/v1/allocations/").json()["results"]
    assert [r["subject"] for r in rows] == [mine.subject_identifier]
    one = api(monitor).get(f"/api/v1/allocations/{mine.subject_identifier}/")
    assert one.status_code == 200 and one.json()["randomization_number"] == "R2-0001"
    filtered = api(sponsor).get("/api/v1/allocations/", {"site": "202"}).json()["results"]
    assert [r["site"] for r in filtered] == ["202"]


def test_api_refuses_site_users_and_is_read_only(rlist, site, coordinator):
    make_randomized_subject(site, by=coordinator)
    for url in ("/api/v1/allocations/", "/api/v1/randomization-balance/"):
        response = api(coordinator).get(url)
        assert response.status_code == 403, url
    sponsor = make_user(Role.SPONSOR)
    assert api(sponsor).post("/api/v1/allocations/", {}).status_code == 405
    assert "slots" not in api(sponsor).get("/api/v1/").json()


def test_api_balance_report(rlist, site, coordinator):
    subject = make_randomized_subject(site, by=coordinator)
    statistician = make_user(Role.STATISTICIAN)
    report = api(statistician).get("/api/v1/randomization-balance/").json()
    assert report["totals"]["total"] == 1
    arm = subject.allocation.arm
    other = "B" if arm == "A" else "A"
    assert report["sites"] == [{"site": "101", arm: 1, other: 0, "total": 1}]
    assert len(report["strata"]) == 8 and report["strata"][1]["slots_left"] == 39
    schema = api(statistician).get("/api/v1/schema/")
    assert b"/api/v1/allocations/" in schema.content
    assert b"/api/v1/randomization-balance/" in schema.content


def test_no_randomization_list_is_exposed_anywhere_in_the_api(rlist, statistician):
    root = api(statistician).get("/api/v1/").json()
    assert set(root) >= {"allocations", "randomization-balance"}
    assert RandomizationList.objects.exists()
    assert not any("slot" in name or "list" in name for name in root)


# --- The cost of one randomization ---------------------------------------------------------------

POST_STATEMENTS = 12  # at most, for the request itself (the edit checks run after its commit)
SAVEPOINTS = ("SAVEPOINT", "RELEASE SAVEPOINT")  # transaction control, not work


def test_one_randomize_post_runs_a_bounded_number_of_sql_statements(
    client, rlist, site, coordinator, django_capture_on_commit_callbacks
):
    """What 16 coordinators at once pay per allocation: the session and the user, the subject,
    its eligibility, the stratum's lock and slot, the allocation and the subject's new status
    with their history. The subject's edit checks run after the commit (in-process without a
    broker, in a thread or at the commit): counted apart, about one statement per check."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from queries.checks import checks_by_code

    with subject_changes_unannounced():  # no check of the set-up pending in the test's transaction
        subject = make_eligible_subject(site, by=coordinator)
    client.force_login(coordinator)
    client.get(subject.get_absolute_url())  # the session as a coordinator's is: already in use
    with (
        django_capture_on_commit_callbacks() as after_commit,
        CaptureQueriesContext(connection) as post,
    ):
        response = client.post(randomize_url(subject), {"stratum": "S2", "confirm": "on"})
    assert response.status_code == 302
    assert Allocation.objects.filter(subject=subject).exists()
    statements = [q["sql"] for q in post.captured_queries if not q["sql"].startswith(SAVEPOINTS)]
    assert len(statements) <= POST_STATEMENTS, "\n".join(statements)

    assert len(after_commit) == 1  # the subject's edit checks, once
    with CaptureQueriesContext(connection) as checks:
        after_commit[0]()
    run = [q["sql"] for q in checks.captured_queries if not q["sql"].startswith(SAVEPOINTS)]
    # A query per check (a few read twice), the run's lock, its queries and the locked data.
    assert len(run) <= len(checks_by_code()) + 5, "\n".join(run)
