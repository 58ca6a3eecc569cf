"""Source data verification: monitors mark records verified (service and page action); a change
to verified data clears the verification in its transaction, with why in the history; the SDV
plan's sample is reproducible; the worklist, the progress per site and per form (page and API)."""

from __future__ import annotations

from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, reset_queries
from django.db.models import F, Value
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events import services as ae_services
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core import access
from core.errors import AccessDenied, DomainError
from core.roles import Role
from eligibility import services as eligibility
from monitoring import sdv_plan, selectors, services
from monitoring.models import SourceDataVerification
from randomization import selectors as randomization_selectors
from subjects import services as subject_services
from subjects.models import Subject
from tests import builders
from tests.builders.eligibility import make_prior_therapy_rows

pytestmark = pytest.mark.django_db


@pytest.fixture
def monitor(site):
    return builders.make_user(Role.MONITOR, site, username="monitor")


def fresh(subject) -> Subject:
    return Subject.objects.get(pk=subject.pk)


def test_a_monitor_verifies_a_record_and_a_change_clears_it_saying_why(
    subject, monitor, coordinator
):
    sdv = services.verify_record(subject, user=monitor)
    assert sdv.verified and sdv.verified_by == monitor
    assert sdv.record_label == f"Subject record of {subject}"

    subject_services.update_demographics(
        fresh(subject), user=coordinator, reason="Initials misread", initials="XY"
    )

    sdv.refresh_from_db()
    assert not sdv.verified
    assert sdv.cleared_reason == "The data changed after verification: Initials misread"
    last = sdv.history.order_by("-history_id").first()
    assert last.history_change_reason == sdv.cleared_reason
    assert last.history_user == coordinator
    # Verified again by the monitor, after checking the new value.
    assert services.verify_record(fresh(subject), user=monitor).verified


def test_a_change_that_fails_leaves_the_verification_standing(
    subject, monitor, coordinator, monkeypatch
):
    """Cleared in the change's own transaction: a save that fails clears nothing."""
    services.verify_record(subject, user=monitor)

    def failing_save(self, *args, **kwargs):
        raise IntegrityError("the database refused the row")

    monkeypatch.setattr(Subject, "save", failing_save)
    with pytest.raises(DomainError):
        subject_services.update_demographics(
            fresh(subject), user=coordinator, reason="Initials misread", initials="XY"
        )
    sdv = SourceDataVerification.objects.get(object_id=subject.pk)
    assert sdv.verified and sdv.history.count() == 1


def test_a_change_of_a_child_row_clears_the_verification_of_its_record(
    subject, monitor, coordinator
):
    assessment = builders.make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    sdv = services.verify_record(assessment, user=monitor)
    eligibility.save_prior_therapies(
        assessment, user=coordinator, rows=make_prior_therapy_rows(), reason="Therapy found"
    )
    sdv.refresh_from_db()
    assert not sdv.verified and "Therapy found" in sdv.cleared_reason


def test_queries_do_not_clear_a_verification(subject, monitor, data_manager):
    from queries import services as queries

    sdv = services.verify_record(subject, user=monitor)
    queries.raise_query(subject, field="initials", message="Check", user=data_manager)
    sdv.refresh_from_db()
    assert sdv.verified


def test_only_the_monitors_of_the_site_verify(site, other_site, subject, coordinator):
    other_monitor = builders.make_user(Role.MONITOR, other_site)
    for user in (coordinator, other_monitor):
        with pytest.raises(AccessDenied, match="not a monitor at site 101"):
            services.verify_record(subject, user=user)
    with pytest.raises(DomainError, match="already verified"):
        monitor = builders.make_user(Role.MONITOR, site)
        services.verify_record(subject, user=monitor)
        services.verify_record(subject, user=monitor)


# --- the plan ----------------------------------------------------------------------------------


def test_the_sample_is_reproducible_and_has_the_planned_share():
    first = [sdv_plan.in_sample(7, "adverse_events.adverseevent", n, 25) for n in range(4000)]
    again = [sdv_plan.in_sample(7, "adverse_events.adverseevent", n, 25) for n in range(4000)]
    assert first == again  # no random state: the same records every time
    assert 0.22 < sum(first) / len(first) < 0.28
    # Another subject, another choice of records.
    other = [sdv_plan.in_sample(8, "adverse_events.adverseevent", n, 25) for n in range(4000)]
    assert other != first
    assert not any(sdv_plan.in_sample(7, "x.y", n, 0) for n in range(200))
    assert all(sdv_plan.in_sample(7, "x.y", n, 100) for n in range(200))


def test_the_plan_verifies_eligibility_randomization_and_serious_aes_in_full(settings):
    settings.SDV_PLAN = {
        "full": [
            "eligibility.eligibilityassessment",
            "randomization.allocation",
            "adverse_events.adverseevent:serious",
        ],
        "sample_percent": 0,
    }
    plan = sdv_plan.plan()
    full = sdv_plan.requirement_of
    assert full("eligibility.eligibilityassessment", 1, 1, None, plan) == sdv_plan.FULL
    assert full("randomization.allocation", 1, 1, None, plan) == sdv_plan.FULL
    assert full("adverse_events.adverseevent", 1, 1, True, plan) == sdv_plan.FULL
    assert full("adverse_events.adverseevent", 1, 1, False, plan) == ""
    assert full("subjects.subject", 1, 1, None, plan) == ""
    models = sdv_plan.sdv_models()
    labels = {m._meta.label_lower for m in models}
    assert labels >= {
        "subjects.subject",
        "eligibility.eligibilityassessment",
        "randomization.allocation",
        "adverse_events.adverseevent",
    }
    # A CRF added later joins the plan by declaring its subject (its child rows go with it).
    assert {"treatment.cycle", "treatment.oraldosingperiod"} <= labels
    assert "treatment.ivdose" not in labels
    assert all(m.subject_lookup in ("pk", "subject") for m in models)


def test_a_record_is_in_or_out_of_the_sample_the_same_way_on_every_read(site, coordinator, monitor):
    subjects = [builders.make_subject(site, by=coordinator) for _ in range(6)]
    rows = selectors.sdv_rows(monitor)
    again = selectors.sdv_rows(monitor)
    assert [r.requirement for r in rows] == [r.requirement for r in again]
    assert {r.subject_id for r in rows} == {s.pk for s in subjects}


# --- pages and API -----------------------------------------------------------------------------


def test_the_worklist_lists_the_sites_records_and_the_monitor_verifies_from_it(
    client, site, other_site, subject, monitor, coordinator, settings
):
    settings.SDV_PLAN = {"full": ["subjects.subject"], "sample_percent": 0}
    foreign = builders.make_subject(other_site)
    client.force_login(monitor)
    page = client.get(reverse("monitoring:worklist")).content.decode()
    assert subject.subject_identifier in page and foreign.subject_identifier not in page
    assert "1 record to verify" in page

    content_type = ContentType.objects.get_for_model(Subject)
    url = reverse("monitoring:verify", args=[content_type.pk, subject.pk])
    response = client.post(url, {"next": reverse("monitoring:worklist")}, follow=True)
    html = response.content.decode()
    assert f"Subject record of {subject}: source data verified." in html
    assert "0 records to verify" in html
    progress = selectors.sdv_progress(monitor)
    assert [(p.name, p.required, p.verified, p.percent) for p in progress["sites"]] == [
        ("101", 1, 1, 100.0)
    ]
    # Another site's record: not found for this monitor.
    foreign_url = reverse("monitoring:verify", args=[content_type.pk, foreign.pk])
    assert client.post(foreign_url).status_code == 404
    client.force_login(coordinator)
    subject_services.update_demographics(
        fresh(subject), user=coordinator, reason="Initials misread", initials="XY"
    )
    client.force_login(coordinator)  # the site sees what waits for the monitor, no action
    coordinator_page = client.get(reverse("monitoring:worklist")).content.decode()
    assert subject.subject_identifier in coordinator_page
    assert 'name="verify"' not in coordinator_page


def test_the_subject_page_offers_the_monitor_the_verify_action_and_shows_the_badge(
    client, subject, monitor, coordinator
):
    assessment = builders.make_eligible_assessment(subject, by=coordinator, sign=False)
    client.force_login(monitor)
    html = client.get(subject.get_absolute_url()).content.decode()
    assert "Monitoring and data lock" in html and "Verify…" in html
    assert 'method="post"' not in html.split("Monitoring and data lock")[1]  # a link, no form
    crf_page = reverse("eligibility:detail", args=[subject.subject_identifier])
    assert "Verify source data…" in client.get(crf_page).content.decode()
    services.verify_record(assessment, user=monitor)
    crf = client.get(crf_page).content.decode()
    assert 'data-badge="verified"' in crf and "Verify source data…" not in crf
    client.force_login(coordinator)  # the site sees the badge too
    assert 'data-badge="verified"' in client.get(crf_page).content.decode()


def test_progress_per_site_and_per_form_in_the_api(site, subject, monitor, data_manager, settings):
    settings.SDV_PLAN = {"full": ["subjects.subject"], "sample_percent": 0}
    services.verify_record(subject, user=monitor)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=data_manager).key}")
    body = api.get("/api/v1/sdv-progress/").json()
    assert body["total"] == {
        "name": "All",
        "required": 1,
        "verified": 1,
        "verified_outside_plan": 0,
        "percent_verified": 100.0,
    }
    assert body["sites"][0]["name"] == "101"
    assert {f["name"]: f["required"] for f in body["forms"]}["Subject"] == 1
    records = api.get("/api/v1/source-data-verification/").json()
    rows = records.get("results", records)
    assert rows[0]["subject"] == subject.subject_identifier and rows[0]["verified"] is True


# --- the plan in SQL: counted and paged by the database ------------------------------------------

CAUSALITY = {
    "A": {
        "toripalimab": {"causality": "unlikely", "action_taken": "not_changed"},
        "bevacizumab": {"causality": "possible", "action_taken": "not_changed"},
    },
    "B": {"sorafenib": {"causality": "possible", "action_taken": "reduced"}},
}
PLAN = {
    "full": ["randomization.allocation", "adverse_events.adverseevent:serious"],
    "sample_percent": 50,
}


def add_aes(subject, by, n: int, *, serious: int = 0) -> None:
    arm = randomization_selectors.arm_of(subject)
    for number in range(n):
        extra = (
            {"serious": True, "sc_hospitalization": True, "site_aware_at": timezone.now()}
            if number < serious
            else {}
        )
        ae_services.record_adverse_event(
            subject,
            user=by,
            term=CtcaeTerm.objects.get(term="Hypertension"),
            grade=2,
            onset_date=builders.site_today(subject.site),
            ongoing=True,
            outcome="not_recovered",
            causality=CAUSALITY[arm],
            **extra,
        )


@pytest.fixture
def small_study(site, other_site, coordinator, monitor, settings):
    """Randomized subjects at two sites with AEs (some serious), a few records verified (one of
    them outside the plan)."""
    settings.SDV_PLAN = PLAN
    load_starter_terms()
    other_coordinator = builders.make_user(Role.SITE_STAFF, other_site)
    subjects = [builders.make_randomized_subject(site, by=coordinator) for _ in range(3)]
    subjects += [builders.make_randomized_subject(other_site, by=other_coordinator)]
    for number, subject in enumerate(subjects):
        by = coordinator if subject.site == site else other_coordinator
        add_aes(subject, by, 3 + number, serious=number % 2)
    builders.make_subject(site, by=coordinator)  # in screening: a subject record alone
    ours = [r for r in slow_rows(monitor)]
    required = [r for r in ours if r[3]]
    unplanned = [r for r in ours if not r[3]]
    assert required and unplanned  # the plan asks for some records of the site, not all
    for record, *_ in required[:3] + unplanned[:1]:
        services.verify_record(record, user=monitor)
    return subjects


def slow_rows(user) -> list[tuple]:
    """(record, site code, form, requirement, subject identifier) of every record of the plan's
    kinds ``user`` sees, the requirement asked of Python one record at a time."""
    rows = []
    for model in sdv_plan.sdv_models():
        form = capfirst(str(model._meta.verbose_name))
        for record in access.scope_to_user(model.objects.all(), user):
            subject = services.subject_of(record)
            rows.append(
                (
                    record,
                    subject.site.code,
                    form,
                    sdv_plan.requirement(record, subject.pk),
                    subject.subject_identifier,
                )
            )
    return rows


def slow_progress(user, site_code: str | None = None) -> dict:
    verified = set(
        SourceDataVerification.objects.filter(verified=True).values_list(
            "content_type_id", "object_id"
        )
    )
    counts: dict[str, Counter] = {}
    for record, code, form, requirement, _ in slow_rows(user):
        if site_code is not None and code != site_code:
            continue
        done = (ContentType.objects.get_for_model(type(record)).pk, record.pk) in verified
        for key in (f"site {code}", f"form {form}", "All"):
            count = counts.setdefault(key, Counter())
            count["required"] += bool(requirement)
            count["verified"] += bool(requirement) and done
            count["other"] += not requirement and done
    return {key: (c["required"], c["verified"], c["other"]) for key, c in counts.items()}


def fast_progress(user, site_id: int | None = None) -> dict:
    progress = selectors.sdv_progress(user, site_id=site_id)
    found = {"All": progress["total"]}
    found |= {f"site {p.name}": p for p in progress["sites"]}
    found |= {f"form {p.name}": p for p in progress["forms"]}
    return {key: (p.required, p.verified, p.verified_other) for key, p in found.items()}


def test_the_sample_drawn_in_sql_is_the_sample_drawn_in_python(site, coordinator):
    subjects = [builders.make_subject(site, by=coordinator) for _ in range(4)]
    label = "adverse_events.adverseevent"
    for object_id in (1, 2, 977, 2**31 - 2, 2**31 + 5, 2**40):  # no overflow, no rounding
        in_sql = dict(
            Subject.objects.annotate(
                draw=sdv_plan.SampleDraw(F("pk"), Value(object_id), label)
            ).values_list("pk", "draw")
        )
        assert in_sql == {s.pk: sdv_plan.sample_draw(s.pk, label, object_id) for s in subjects}, (
            object_id
        )


def test_progress_counted_in_sql_is_the_count_of_every_record(
    small_study, monitor, data_manager, other_site
):
    """The aggregate query gives what a count of each record, its requirement asked of Python
    one at a time, gives: per site, per form and overall, for each user's sites."""
    for user in (monitor, data_manager):
        slow = slow_progress(user)
        assert fast_progress(user) == slow
        assert slow["All"][1] == 3 and slow["All"][2] == 1  # the verifications are counted
    assert set(fast_progress(monitor)) >= {"site 101", "form Adverse event", "form Allocation"}
    assert "site 202" not in fast_progress(monitor)
    assert fast_progress(data_manager, site_id=other_site.pk) == slow_progress(data_manager, "202")
    # Serious AEs are always asked for, whatever the sample.
    serious = [r for r in slow_rows(data_manager) if getattr(r[0], "serious", False)]
    assert serious and all(r[3] == sdv_plan.FULL for r in serious)


def test_the_worklist_pages_the_waiting_records_full_verification_first(
    client, small_study, data_manager, monkeypatch
):
    monkeypatch.setattr(selectors, "WORKLIST_PAGE_SIZE", 4)
    client.force_login(data_manager)
    verified = set(SourceDataVerification.objects.values_list("content_type_id", "object_id"))
    waiting = [
        r
        for r in slow_rows(data_manager)
        if r[3] and (ContentType.objects.get_for_model(type(r[0])).pk, r[0].pk) not in verified
    ]
    waiting.sort(key=lambda r: (r[3] != sdv_plan.FULL, r[1], r[4], r[2], r[0].pk))
    expected = [(type(r[0])._meta.label_lower, r[0].pk, r[3]) for r in waiting]
    pages = -(-len(expected) // 4)
    assert pages >= 3

    seen, counts = [], set()
    client.get(reverse("monitoring:worklist"))  # warm: the content types of the plan's kinds
    for number in range(1, pages + 1):
        reset_queries()  # as the request does: the capture counts from 0
        with CaptureQueriesContext(connection) as queries:
            response = client.get(reverse("monitoring:worklist"), {"page": number})
        counts.add(len(queries))
        page = response.context["page"]
        assert len(page.object_list) == (4 if number < pages else len(expected) - 4 * (pages - 1))
        seen += [(row.label, row.object_id, row.requirement) for row in page.object_list]
        html = response.content.decode()
        assert f"Page {number} of {pages}" in html
        assert f"{len(expected)} records to verify" in html
        assert ("Next →" in html) == (number < pages)
    assert seen == expected  # every waiting record once, in the worklist's order
    assert len(counts) == 1 and min(counts) > 3  # the same queries on every page
    # Pages of any size, among them one where the full verifications end and the sample begins.
    progress = selectors.sdv_progress(data_manager)
    worklist = selectors.Worklist(data_manager, progress)
    assert 0 < progress["full_waiting"] < len(worklist) == len(expected)
    for size in range(2, 8):
        read = [worklist[start : start + size] for start in range(0, len(expected), size)]
        assert [(r.label, r.object_id, r.requirement) for p in read for r in p] == expected
    # A page past the end shows the last one; a page that is not a number, the first.
    last = client.get(reverse("monitoring:worklist"), {"page": 99}).context["page"]
    assert last.number == pages
    assert client.get(reverse("monitoring:worklist"), {"page": "x"}).context["page"].number == 1


def test_the_worklist_and_dashboard_queries_do_not_grow_with_the_study(
    client, small_study, site, coordinator, monitor, data_manager
):
    def queries_of(user) -> list[int]:
        client.force_login(user)
        found = []
        for url in (reverse("monitoring:worklist"), reverse("dashboard:home")):
            client.get(url)  # warm: the content types and the user's memberships
            reset_queries()  # as the request does: the capture counts from 0
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            assert len(queries) > 5  # the session, the user, the page's own
            found.append(len(queries))
        return found

    before = {user.pk: queries_of(user) for user in (monitor, data_manager)}
    subject = builders.make_randomized_subject(site, by=coordinator)
    add_aes(subject, coordinator, 6, serious=2)
    for _ in range(11):  # more subjects waiting for a decision than the dashboard lists
        builders.make_subject(site, by=coordinator)
    after = {user.pk: queries_of(user) for user in (monitor, data_manager)}
    assert after == before
