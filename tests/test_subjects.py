"""Subjects: registration, identifiers, consent, status through the trial, deletion."""

import threading
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from core.errors import AccessDenied, DomainError, ReasonRequired
from core.roles import Role
from subjects import services
from subjects.models import Subject, SubjectStatus
from subjects.services import TransitionNotAllowed

from .builders import make_site, make_subject, make_user, site_today

pytestmark = pytest.mark.django_db


def test_identifiers_follow_site_code_and_sequence(site, coordinator, other_site):
    first = make_subject(site, by=coordinator)
    second = make_subject(site, by=coordinator)
    elsewhere = make_subject(other_site)
    assert [first.subject_identifier, second.subject_identifier] == ["101-0001", "101-0002"]
    assert elsewhere.subject_identifier == "202-0001"


def test_identifier_never_changes(subject, coordinator):
    services.update_demographics(
        subject, user=coordinator, reason="Typo in screening log number", screening_number="X9"
    )
    subject.refresh_from_db()
    assert subject.subject_identifier == "101-0001"
    with pytest.raises(DomainError, match="cannot be changed here"):
        services.update_demographics(
            subject, user=coordinator, reason="try", subject_identifier="101-9999"
        )


def test_screening_number_unique_per_site(site, coordinator):
    make_subject(site, by=coordinator, screening_number="SCR-1")
    with pytest.raises(ValidationError, match="already exists"):
        make_subject(site, by=coordinator, screening_number="SCR-1")
    assert Subject.objects.count() == 1


def test_only_data_entry_roles_at_the_site_register(site, other_coordinator):
    monitor = make_user(Role.MONITOR, site)
    for user in (other_coordinator, monitor):
        with pytest.raises(AccessDenied, match="site 101"):
            make_subject(site, by=user)
    assert not Subject.objects.exists()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"date_of_birth": date(2999, 1, 1)}, "in the future"),
        ({"date_of_birth": None}, "date of birth, or the age"),
        ({"date_of_birth": date(1960, 1, 1), "age_at_screening": 60}, "not both"),
        ({"date_of_birth": None, "age_at_screening": 130}, "less than or equal to 120"),
        ({"initials": "jd1"}, "capital letters"),
    ],
)
def test_bad_registration_data_is_refused_and_nothing_saved(site, coordinator, fields, message):
    with pytest.raises(ValidationError, match=message):
        make_subject(site, by=coordinator, consented=False, **fields)
    assert not Subject.objects.exists()


def test_age_is_computed_at_consent(site, coordinator):
    subject = make_subject(
        site, by=coordinator, date_of_birth=date(2003, 6, 15), consent_date=date(2021, 6, 14)
    )
    assert subject.age == 17
    assert subject.age_on(date(2021, 6, 15)) == 18


def test_consent_required_before_any_crf(site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    with pytest.raises(services.ConsentRequired, match="record the consent"):
        services.ensure_consented(subject)
    services.record_consent(
        subject, user=coordinator, consent_date=site_today(), consent_version="2.0"
    )
    services.ensure_consented(subject)


def test_correcting_consent_needs_a_reason(subject, coordinator):
    with pytest.raises(DomainError, match="give a reason"):
        services.record_consent(
            subject, user=coordinator, consent_date=date(2026, 1, 2), consent_version="2.0"
        )
    services.record_consent(
        subject,
        user=coordinator,
        consent_date=subject.consent_date - timedelta(days=1),
        consent_version="2.0",
        reason="Consent date transcribed wrongly",
    )
    assert subject.history.first().history_change_reason == "Consent date transcribed wrongly"


def test_future_consent_date_is_refused(site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    with pytest.raises(ValidationError, match="in the future"):
        services.record_consent(
            subject,
            user=coordinator,
            consent_date=timezone.localdate() + timedelta(days=2),
            consent_version="2.0",
        )


@pytest.mark.parametrize(
    "path",
    [
        [SubjectStatus.SCREEN_FAILED],
        [SubjectStatus.RANDOMIZED, SubjectStatus.TREATMENT_ENDED, SubjectStatus.COMPLETED],
        [SubjectStatus.RANDOMIZED, SubjectStatus.TREATMENT_ENDED, SubjectStatus.DIED],
        [SubjectStatus.RANDOMIZED, SubjectStatus.WITHDRAWN],
        [SubjectStatus.RANDOMIZED, SubjectStatus.DIED],
    ],
)
def test_allowed_transitions(subject, coordinator, path):
    today = site_today()
    for status in path:
        if status == SubjectStatus.RANDOMIZED:
            services.mark_randomized(subject, user=coordinator, on_date=today, reason="Randomized")
        else:
            services.change_status(
                subject, status, user=coordinator, reason="Per protocol", on_date=today
            )
        subject.refresh_from_db()
        assert subject.status == status
    assert subject.status_date == today


@pytest.mark.parametrize(
    "start, target, message",
    [
        ([], SubjectStatus.COMPLETED, "screening: it cannot become completed"),
        ([], SubjectStatus.TREATMENT_ENDED, "Allowed: randomized, screen failed"),
        ([SubjectStatus.SCREEN_FAILED], SubjectStatus.SCREENING, "That status is final"),
        (
            [SubjectStatus.RANDOMIZED, SubjectStatus.DIED],
            SubjectStatus.COMPLETED,
            "That status is final",
        ),
        (
            [SubjectStatus.RANDOMIZED, SubjectStatus.WITHDRAWN],
            SubjectStatus.TREATMENT_ENDED,
            "That status is final",
        ),
        (
            [SubjectStatus.RANDOMIZED],
            SubjectStatus.SCREEN_FAILED,
            "randomized: it cannot become screen failed",
        ),
    ],
)
def test_refused_transitions(subject, coordinator, start, target, message):
    today = site_today()
    for status in start:
        if status == SubjectStatus.RANDOMIZED:
            services.mark_randomized(subject, user=coordinator, on_date=today, reason="Randomized")
        else:
            services.change_status(subject, status, user=coordinator, reason="r", on_date=today)
    before = subject.status
    with pytest.raises(TransitionNotAllowed, match=message):
        services.change_status(subject, target, user=coordinator, reason="r", on_date=today)
    subject.refresh_from_db()
    assert subject.status == before


def test_randomized_only_through_randomization(subject, coordinator):
    with pytest.raises(TransitionNotAllowed, match="only through randomization"):
        services.change_status(
            subject,
            SubjectStatus.RANDOMIZED,
            user=coordinator,
            reason="r",
            on_date=site_today(),
        )


def test_status_change_needs_reason_and_a_real_date(subject, coordinator):
    with pytest.raises(ReasonRequired):
        services.change_status(
            subject,
            SubjectStatus.SCREEN_FAILED,
            user=coordinator,
            reason=" ",
            on_date=site_today(),
        )
    with pytest.raises(DomainError, match="cannot be in the future"):
        services.change_status(
            subject,
            SubjectStatus.SCREEN_FAILED,
            user=coordinator,
            reason="r",
            on_date=timezone.localdate() + timedelta(days=3),
        )
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.SCREENING


def test_randomized_subject_is_never_deleted(subject, coordinator):
    services.mark_randomized(subject, user=coordinator, on_date=site_today(), reason="Randomized")
    with pytest.raises(DomainError, match="never is"):
        services.delete_subject(subject, user=coordinator, reason="Registered in error")
    assert Subject.objects.filter(pk=subject.pk).exists()


def test_subject_in_screening_can_be_deleted_with_a_reason(subject, coordinator):
    with pytest.raises(ReasonRequired):
        services.delete_subject(subject, user=coordinator, reason="")
    services.delete_subject(subject, user=coordinator, reason="Registered twice")
    assert not Subject.objects.exists()
    deleted = Subject.history.filter(history_type="-").get()
    assert deleted.history_change_reason == "Registered twice"
    assert deleted.history_user == coordinator


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_identifiers_unique_under_concurrent_enrollment():
    """Twelve coordinators register at one site at the same moment: twelve distinct numbers."""
    site = make_site("301")
    users = [make_user(Role.SITE_STAFF, site) for _ in range(12)]
    barrier = threading.Barrier(len(users))
    identifiers, errors = [], []

    def enroll(user, n):
        try:
            barrier.wait()
            subject = services.register_subject(
                site=site, user=user, screening_number=f"C{n}", sex="F", age_at_screening=50
            )
            identifiers.append(subject.subject_identifier)
        except Exception as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=enroll, args=(u, n)) for n, u in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(identifiers) == [f"301-{n:04d}" for n in range(1, 13)]


def test_status_change_cannot_predate_screening(subject, coordinator):
    with pytest.raises(DomainError, match="before screening"):
        services.change_status(
            subject,
            SubjectStatus.SCREEN_FAILED,
            user=coordinator,
            reason="r",
            on_date=subject.screening_date - timedelta(days=400),
        )


def test_refusal_names_the_roles_needed(site, other_coordinator):
    with pytest.raises(AccessDenied, match="You are not site staff or an investigator at site 101"):
        make_subject(site, by=other_coordinator)


def test_study_wide_roles_get_no_data_entry_membership(site, data_manager):
    from subjects.models import SiteMembership

    with pytest.raises(DomainError, match="does not enter clinical data"):
        services.save_membership(
            SiteMembership(user=data_manager, site=site, role=Role.SITE_STAFF), user=data_manager
        )
    assert not SiteMembership.objects.filter(user=data_manager).exists()


def test_a_sites_code_never_changes(site, data_manager):
    site.code = "909"
    with pytest.raises(DomainError, match="code cannot change"):
        services.save_site(site, user=data_manager, reason="Renumbered")
    site.refresh_from_db()
    site.name = "Renamed hospital"
    services.save_site(site, user=data_manager, reason="Hospital renamed")
    assert site.history.first().history_change_reason == "Hospital renamed"


# A moment when the date differs between UTC and the sites ahead of it: 20:00 UTC on 31 October
# is 04:00 on 1 November in Shanghai.
SHANGHAI_MORNING = datetime(2026, 10, 31, 20, 0, tzinfo=UTC)


def test_the_screening_date_defaults_to_today_at_the_site():
    from subjects.forms import RegisterSubjectForm

    shanghai = make_site("303", time_zone="Asia/Shanghai")
    staff = make_user(Role.SITE_STAFF, shanghai)
    with mock.patch("django.utils.timezone.now", return_value=SHANGHAI_MORNING):
        subject = services.register_subject(
            site=shanghai,
            user=staff,
            screening_number="SCR-TZ",
            sex="F",
            date_of_birth=date(1965, 5, 17),
        )
        form = RegisterSubjectForm(user=staff)  # one site: its today is offered
    assert subject.screening_date == date(2026, 11, 1)  # not UTC's 31 October
    assert form.fields["screening_date"].initial == date(2026, 11, 1)
