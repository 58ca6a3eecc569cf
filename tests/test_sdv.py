"""Source data verification: monitors mark records verified (service and page action); a change
to verified data clears the verification in its transaction, with why in the history; the SDV
plan's sample is reproducible; the worklist, the progress per site and per form (page and API)."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.errors import AccessDenied, DomainError
from core.roles import Role
from eligibility import services as eligibility
from monitoring import sdv_plan, selectors, services
from monitoring.models import SourceDataVerification
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
