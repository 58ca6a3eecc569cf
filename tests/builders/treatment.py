"""Treatment test data: subjects randomized some days ago, cycles with IV doses, sorafenib
periods, and ``add_treatment_records`` for the tests that need every exported form to have rows.

A randomization is dated now (its time is immutable), and exposure dates may not precede it:
``make_subject_randomized_days_ago`` builds the subject under a clock moved back (every
``timezone.now()`` of the services, history and validators reads it), so the later cycles can
be dated between then and today.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from unittest import mock

from django.utils import timezone

from core.roles import Role
from randomization.arms import Arm, StudyDrug
from subjects.models import Site, Subject
from treatment import services
from treatment.models import Cycle, DoseLevel, OralDosingPeriod

from .randomization import make_subject_in_arm
from .subjects import make_user


def make_subject_randomized_days_ago(arm: str, site: Site, days: int, *, by=None) -> Subject:
    """A subject of ``arm`` randomized (and consented, screened…) ``days`` days ago."""
    then: datetime = timezone.now() - timedelta(days=days)
    with mock.patch("django.utils.timezone.now", return_value=then):
        by = by or make_user(Role.SITE_STAFF, site)
        subject = make_subject_in_arm(arm, site, by=by)
    return Subject.objects.get(pk=subject.pk)


def randomized_on(subject: Subject) -> date:
    from randomization.selectors import randomization_date

    return randomization_date(subject)


def full_doses(weight_kg, day1: date) -> dict:
    """Arm A doses at the planned dose on day 1."""
    bev = (Decimal("15") * Decimal(str(weight_kg))).quantize(Decimal("0.1"))
    return {
        StudyDrug.TORIPALIMAB: {"given_dose_mg": Decimal("240"), "administered_date": day1},
        StudyDrug.BEVACIZUMAB: {"given_dose_mg": bev, "administered_date": day1},
    }


def add_cycle(
    subject: Subject,
    number: int,
    *,
    by,
    day1: date | None = None,
    weight_kg="70.0",
    doses: dict | None = None,
) -> Cycle:
    """Cycle ``number`` on its nominal day 1 (unless ``day1``); arm A gets its full doses
    unless ``doses`` says otherwise."""
    start = randomized_on(subject)
    day1 = day1 or start + timedelta(days=21 * (number - 1))
    if doses is None:
        doses = full_doses(weight_kg, day1) if subject.allocation.arm == Arm.A else {}
    return services.save_cycle(
        subject, user=by, number=number, day1_date=day1, weight_kg=weight_kg, doses=doses
    )


def add_oral_period(
    subject: Subject,
    *,
    by,
    start: date,
    stop: date | None = None,
    level: str = DoseLevel.FULL,
    why: str = "",
    adverse_event=None,
) -> OralDosingPeriod:
    return services.save_oral_period(
        subject,
        user=by,
        dose_level=level,
        start_date=start,
        stop_date=stop,
        dose_change_reason=why,
        adverse_event=adverse_event,
    )


def add_exposure_records(subject: Subject, *, by) -> Subject:
    """Exposure on a subject randomized today (every treatment form has rows): cycle 1 (arm A:
    with its two IV doses) and, for arm B, a sorafenib period at full dose from today."""
    add_cycle(subject, 1, by=by, day1=randomized_on(subject))
    if subject.allocation.arm == Arm.B:
        add_oral_period(subject, by=by, start=randomized_on(subject))
    return subject


def add_treatment_records(site: Site, *, by) -> tuple[Subject, Subject]:
    """An arm A subject with a cycle and its two IV doses and an arm B subject with a cycle and
    two sorafenib periods (one reduced): every treatment form has rows."""
    arm_a = make_subject_randomized_days_ago(Arm.A, site, 30, by=by)
    add_cycle(arm_a, 1, by=by)
    arm_b = make_subject_randomized_days_ago(Arm.B, site, 30, by=by)
    add_cycle(arm_b, 1, by=by)
    start = randomized_on(arm_b)
    add_oral_period(arm_b, by=by, start=start, stop=start + timedelta(days=13))
    add_oral_period(
        arm_b,
        by=by,
        start=start + timedelta(days=14),
        level=DoseLevel.REDUCED_400,
        why="Hand-foot skin reaction grade 2",
    )
    return arm_a, arm_b
