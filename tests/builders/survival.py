"""Survival test data: subjects randomized some days ago (so that later dates are plausible),
end of treatment, follow-up contacts with subsequent therapies, end of study; and
``add_survival_records`` for the tests that need every exported form to have rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from unittest import mock

from django.utils import timezone

from core.roles import Role
from randomization.arms import Arm
from subjects.models import Site, Subject
from survival import services
from survival.models import (
    DeathCause,
    EndOfStudyReason,
    EndOfTreatmentReason,
    VitalStatus,
)

from .randomization import make_subject_in_arm
from .subjects import make_user


def randomized_days_ago(arm: str, site: Site, days: int, *, by=None) -> Subject:
    """A subject of ``arm`` randomized ``days`` days ago (built under a clock moved back: a
    randomization is dated now, and the CRFs after it may not precede it)."""
    then: datetime = timezone.now() - timedelta(days=days)
    with mock.patch("django.utils.timezone.now", return_value=then):
        by = by or make_user(Role.SITE_STAFF, site)
        subject = make_subject_in_arm(arm, site, by=by)
    return Subject.objects.get(pk=subject.pk)


def study_day(subject: Subject, day: int) -> date:
    """The date of study day ``day`` of ``subject`` (day 1: randomization)."""
    return services.randomization_date(subject) + timedelta(days=day - 1)


def end_treatment(subject: Subject, *, by, day: int, why=EndOfTreatmentReason.PROGRESSION, **extra):
    return services.record_end_of_treatment(
        subject, user=by, last_dose_date=study_day(subject, day), end_reason=why, **extra
    )


def follow_up(subject: Subject, *, by, day: int, status=VitalStatus.ALIVE, therapies=(), **extra):
    when = study_day(subject, day)
    return services.record_follow_up(
        subject,
        user=by,
        contact_date=when,
        vital_status=status,
        last_known_alive_date=extra.pop("last_known_alive_date", when),
        therapies=therapies,
        **extra,
    )


def record_death(subject: Subject, *, by, day: int, cause=DeathCause.PROGRESSION, **extra):
    when = study_day(subject, day)
    return services.record_end_of_study(
        subject,
        user=by,
        end_date=when,
        end_reason=EndOfStudyReason.DEATH,
        death_date=when,
        death_cause=cause,
        **extra,
    )


def add_survival_records(site: Site, *, by) -> tuple[Subject, Subject]:
    """Two subjects with every survival record: an arm A subject whose treatment ended for
    progression, followed up (a subsequent therapy) and dead; an arm B subject followed up
    alive, who withdrew consent."""
    dead = randomized_days_ago(Arm.A, site, 200, by=by)
    end_treatment(dead, by=by, day=90)
    follow_up(
        dead,
        by=by,
        day=120,
        therapies=[{"agent": "Lenvatinib", "start_date": study_day(dead, 100)}],
    )
    record_death(dead, by=by, day=150)
    withdrawn = randomized_days_ago(Arm.B, site, 200, by=by)
    end_treatment(withdrawn, by=by, day=60, why=EndOfTreatmentReason.INVESTIGATOR)
    follow_up(withdrawn, by=by, day=140)
    services.record_end_of_study(
        withdrawn,
        user=by,
        end_date=study_day(withdrawn, 160),
        end_reason=EndOfStudyReason.CONSENT_WITHDRAWN,
    )
    return Subject.objects.get(pk=dead.pk), Subject.objects.get(pk=withdrawn.pk)


def add_survival_crfs(subject: Subject, *, by, died: bool = True) -> Subject:
    """Every survival form on a subject randomized today (all dated today): the end of
    treatment, a follow-up contact with a subsequent therapy, and the end of study (a death, or
    a withdrawal of consent: the status a withdrawn subject already has)."""
    today = services.randomization_date(subject)
    end_treatment(subject, by=by, day=1)
    follow_up(subject, by=by, day=1, therapies=[{"agent": "Lenvatinib", "start_date": today}])
    if died:
        record_death(subject, by=by, day=1)
    else:
        services.record_end_of_study(
            subject, user=by, end_date=today, end_reason=EndOfStudyReason.CONSENT_WITHDRAWN
        )
    return Subject.objects.get(pk=subject.pk)
