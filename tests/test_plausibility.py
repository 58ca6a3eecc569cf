"""Plausibility rules at entry: each a clear error on every path (service, web form)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from adverse_events import services as ae_services
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core.errors import DomainError
from core.roles import Role
from eligibility import services as eligibility_services
from queries import services as query_services
from randomization import services as randomization_services
from subjects import services as subject_services
from subjects.models import SubjectStatus

from .builders import (
    days_ago,
    eligible_data,
    ensure_active_list,
    make_eligible_assessment,
    make_site,
    make_subject,
    make_user,
    site_today,
)

pytestmark = pytest.mark.django_db

BEFORE_START = re.escape("before the study started (01 Oct 2020)")


def test_a_date_of_birth_giving_an_age_over_120_is_refused(site, coordinator):
    with pytest.raises(ValidationError, match="gives an age of 1[2-9][0-9] at screening"):
        make_subject(site, by=coordinator, date_of_birth=date(1890, 1, 1))
    born_today = make_subject(site, by=coordinator, date_of_birth=days_ago(0), consented=False)
    assert born_today.age_on(days_ago(0)) == 0  # 0 is plausible (the rule is 0-120)


def test_screening_and_consent_before_the_study_start_are_refused(site, coordinator):
    with pytest.raises(ValidationError, match=BEFORE_START):
        make_subject(site, by=coordinator, screening_date=date(2019, 5, 1), consented=False)
    subject = make_subject(site, by=coordinator, consented=False)
    with pytest.raises(ValidationError, match=BEFORE_START):
        subject_services.record_consent(
            subject, user=coordinator, consent_date=date(2020, 9, 30), consent_version="1.0"
        )


def test_the_study_start_is_a_setting(site, coordinator, settings):
    settings.EDC_STUDY_START = date(2018, 1, 1)
    make_subject(
        site, by=coordinator, screening_date=date(2019, 5, 1), consent_date=date(2019, 5, 1)
    )


def test_the_consent_page_shows_the_rule_as_a_form_error(client, site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    client.force_login(coordinator)
    response = client.post(
        reverse("subjects:consent", args=[subject.subject_identifier]),
        {"consent_date": "2019-12-01", "consent_version": "1.0"},
    )
    assert response.status_code == 200
    assert "before the study started" in response.text
    subject.refresh_from_db()
    assert subject.consent_date is None


def test_an_ae_before_the_study_start_is_refused(subject, coordinator):
    load_starter_terms()
    with pytest.raises(ValidationError, match=BEFORE_START):
        ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=CtcaeTerm.objects.get(term="Hypertension"),
            grade=1,
            onset_date=date(2020, 1, 1),
            ongoing=True,
            outcome="not_recovered",
        )


def test_a_planned_randomization_more_than_28_days_ahead_is_refused(subject, coordinator):
    data = eligible_data(subject, planned_randomization_date=days_ago(-29))
    with pytest.raises(ValidationError, match="more than 28 days ahead"):
        eligibility_services.save_assessment(subject, user=coordinator, data=data)
    data["planned_randomization_date"] = days_ago(-28)
    eligibility_services.save_assessment(subject, user=coordinator, data=data)


def test_the_28_days_ahead_count_from_today_at_the_site():
    # 20:00 UTC on 31 October is 04:00 on 1 November in Shanghai: 28 days ahead is 29 November
    # there (from UTC's date, one day too many).
    shanghai = make_site("303", time_zone="Asia/Shanghai")
    staff = make_user(Role.SITE_STAFF, shanghai)
    shanghai_morning = datetime(2026, 10, 31, 20, tzinfo=UTC)
    with mock.patch("django.utils.timezone.now", return_value=shanghai_morning):
        subject = make_subject(shanghai, by=staff)
        data = eligible_data(subject, planned_randomization_date=date(2026, 11, 29))
        eligibility_services.save_assessment(subject, user=staff, data=data)
        data["planned_randomization_date"] = date(2026, 11, 30)
        with pytest.raises(ValidationError, match="more than 28 days ahead"):
            eligibility_services.save_assessment(subject, user=staff, data=data, reason="Moved")


def test_a_death_before_randomization_is_refused(site, coordinator):
    subject = make_subject(
        site, by=coordinator, screening_date=days_ago(10), consent_date=days_ago(10)
    )
    ensure_active_list()
    make_eligible_assessment(subject, by=coordinator)
    randomization_services.randomize(subject, coordinator)  # randomized today
    subject.refresh_from_db()
    with pytest.raises(DomainError, match="before 101-0001 became randomized"):
        subject_services.change_status(
            subject, SubjectStatus.DIED, user=coordinator, reason="Died", on_date=days_ago(1)
        )
    with pytest.raises(DomainError, match="before screening"):
        subject_services.change_status(
            subject,
            SubjectStatus.DIED,
            user=coordinator,
            reason="Died",
            on_date=subject.consent_date - timedelta(days=1),
        )


def test_free_text_is_bounded(subject, coordinator, data_manager):
    load_starter_terms()
    with pytest.raises(ValidationError, match="Keep this to 2000 characters"):
        ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=CtcaeTerm.objects.get(term="Hypertension"),
            grade=1,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            treatment_given=True,
            treatment_details="x" * 2001,
        )
    with pytest.raises(ValidationError, match="Keep this to 4000 characters"):
        query_services.raise_query(subject, field="sex", message="?" * 4001, user=data_manager)


def test_a_sites_own_today_is_never_in_the_future(monkeypatch):
    """06:30 in Shanghai on 24 Nov is still 23 Nov in UTC: the site's today is accepted, the
    next day is refused."""
    from datetime import datetime

    from core import validators

    shanghai_morning = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)
    monkeypatch.setattr(validators.timezone, "now", lambda: shanghai_morning)
    assert validators.latest_today() == date(2026, 11, 24)
    validators.not_in_future(date(2026, 11, 24))
    with pytest.raises(ValidationError, match="in the future"):
        validators.not_in_future(date(2026, 11, 25))
