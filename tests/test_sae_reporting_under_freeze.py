"""Safety reporting goes on under a freeze: the time a serious AE was reported to the sponsor is
recorded (or corrected, with a reason) while the AE record or the subject's casebook is frozen,
audited, its source data verification cleared; a lock (the record's, the casebook's, the study's)
refuses it with a sentence. The exception is narrow: every other field of the AE stays frozen."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent
from core.audit import audited_delete, audited_save
from core.errors import AccessDenied, DomainError
from core.roles import Role
from monitoring import services as monitoring
from monitoring.models import SourceDataVerification
from monitoring.state import DataLocked
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .builders import PASSWORD, days_ago, make_subject, make_user, site_today
from .builders.ctcae import term

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ctcae")]

FROZEN_LEVELS = ("record_frozen", "casebook_frozen")
LOCKED_LEVELS = ("record_locked", "casebook_locked", "study_locked")


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site, username="monitor")


@pytest.fixture
def sae(site, coordinator, investigator, monitor):
    """A serious AE the site became aware of 3 hours ago, not yet reported, verified by the
    monitor; the subject's participation over and its casebook signed (so that every level,
    the study lock included, may be applied)."""
    subject = make_subject(site, by=coordinator, consent_date=days_ago(30))
    ae = ae_services.record_adverse_event(
        subject,
        user=coordinator,
        term=term("Hypertension"),
        grade=3,
        onset_date=days_ago(1),
        ongoing=True,
        outcome="not_recovered",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=timezone.now() - timedelta(hours=3),
    )
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Not eligible",
        on_date=site_today(),
    )
    subject = Subject.objects.get(pk=subject.pk)
    monitoring.sign_casebook(subject, user=investigator, password=PASSWORD)
    monitoring.verify_record(ae, user=monitor)
    return AdverseEvent.objects.get(pk=ae.pk)


def apply(level: str, ae: AdverseEvent, data_manager) -> None:
    state = level.split("_")[1]
    if level.startswith("record"):
        monitoring.set_record_state(ae, state, user=data_manager)
    elif level.startswith("casebook"):
        monitoring.set_casebook_state(ae.subject, state, user=data_manager)
    else:
        monitoring.lock_study(user=data_manager, reason="Database lock for the final analysis")


def sentence(level: str, ae: AdverseEvent) -> str:
    if level == "study_locked":
        return "The study is locked for analysis: no change is possible."
    what = str(ae) if level.startswith("record") else f"Subject {ae.subject}"
    return f"{what} is locked: no change is possible."


def verified(ae: AdverseEvent) -> bool:
    return SourceDataVerification.objects.get(
        object_id=ae.pk, content_type__model="adverseevent"
    ).verified


@pytest.mark.parametrize("level", FROZEN_LEVELS)
def test_the_sae_report_time_is_recorded_under_a_freeze(level, sae, coordinator, data_manager):
    apply(level, sae, data_manager)
    reported = timezone.now() - timedelta(minutes=30)
    ae_services.mark_sae_reported(sae, user=coordinator, reported_at=reported)
    sae.refresh_from_db()
    assert sae.sae_reported_at == reported
    last = sae.history.latest("history_id")
    assert (last.sae_reported_at, last.history_user, last.history_change_reason) == (
        reported,
        coordinator,
        "SAE reported to the sponsor",
    )
    assert not verified(sae)  # the change cleared the monitor's verification

    corrected = reported - timedelta(minutes=10)
    ae_services.mark_sae_reported(
        sae, user=coordinator, reported_at=corrected, reason="Time read from the fax receipt"
    )
    sae.refresh_from_db()
    assert sae.sae_reported_at == corrected
    assert sae.history.latest("history_id").history_change_reason == (
        "Time read from the fax receipt"
    )


@pytest.mark.parametrize("level", LOCKED_LEVELS)
def test_a_lock_refuses_the_sae_report_time_with_a_sentence(level, sae, coordinator, data_manager):
    apply(level, sae, data_manager)
    rows = sae.history.count()
    with pytest.raises(AccessDenied) as refused:
        ae_services.mark_sae_reported(sae, user=coordinator, reported_at=timezone.now())
    assert str(refused.value) == sentence(level, sae)
    sae.refresh_from_db()
    assert sae.sae_reported_at is None and sae.history.count() == rows
    assert verified(sae)


@pytest.mark.parametrize("level", LOCKED_LEVELS)
def test_the_write_guard_refuses_the_report_time_under_a_lock(level, sae, data_manager):
    """Whatever path writes (a service that skipped the access check, the admin)."""
    apply(level, sae, data_manager)
    sae.sae_reported_at = timezone.now()
    with pytest.raises(DataLocked, match="is locked"):
        audited_save(sae, user=data_manager, reason="Reported by phone")


@pytest.mark.parametrize("level", FROZEN_LEVELS)
def test_every_other_field_of_the_ae_stays_frozen(level, sae, coordinator, data_manager):
    apply(level, sae, data_manager)
    with pytest.raises(DomainError, match="is frozen"):
        ae_services.update_adverse_event(sae, user=coordinator, reason="Worse", grade=4)
    # Past the access check, the write guard itself: the report time does not carry a grade.
    sae.sae_reported_at = timezone.now()
    sae.grade = 4
    with pytest.raises(DataLocked, match="is frozen"):
        audited_save(sae, user=coordinator, reason="Worse, and reported")
    fresh = AdverseEvent.objects.get(pk=sae.pk)
    assert (fresh.grade, fresh.sae_reported_at) == (3, None)
    assert verified(fresh)


def test_a_frozen_ae_is_not_deleted(sae, data_manager):
    apply("record_frozen", sae, data_manager)
    sae.sae_reported_at = timezone.now()  # a changed exempt field does not make a delete one
    with pytest.raises(DataLocked, match="is frozen"):
        audited_delete(sae, user=data_manager, reason="Entered twice")
    assert AdverseEvent.objects.filter(pk=sae.pk).exists()


def report_url(ae: AdverseEvent) -> str:
    return reverse("adverse_events:report", args=[ae.subject.subject_identifier, ae.ae_number])


def local(moment, ae: AdverseEvent) -> str:
    return timezone.localtime(moment, ae.subject.site.zoneinfo).strftime("%Y-%m-%dT%H:%M")


def test_the_report_page_records_the_time_on_a_frozen_casebook(
    client, sae, coordinator, data_manager
):
    apply("casebook_frozen", sae, data_manager)
    client.force_login(coordinator)
    edit = client.get(sae.get_absolute_url()).content.decode()  # read-only: frozen
    assert report_url(sae) in edit  # ... with the way to the report
    assert client.get(report_url(sae)).status_code == 200
    reported = (timezone.now() - timedelta(minutes=5)).replace(second=0, microsecond=0)
    response = client.post(report_url(sae), {"reported_at": local(reported, sae)})
    assert response.status_code == 302
    assert response["Location"].endswith(
        f"/subjects/{sae.subject.subject_identifier}/adverse-events/"
    )
    sae.refresh_from_db()
    assert sae.sae_reported_at == reported


def test_the_report_page_refuses_a_locked_casebook_with_the_sentence(
    client, sae, coordinator, data_manager
):
    apply("casebook_locked", sae, data_manager)
    client.force_login(coordinator)
    response = client.post(
        report_url(sae), {"reported_at": local(timezone.now(), sae)}, follow=True
    )
    assert sentence("casebook_locked", sae) in response.content.decode()
    sae.refresh_from_db()
    assert sae.sae_reported_at is None
