"""Study drug exposure rules: cycles with their IV doses, sorafenib dosing periods.

The only write path for these CRFs (``save_cycle``, ``save_oral_period``): site staff and
investigators of the subject's site, for a randomized subject. The planned dose is always derived,
never entered, and a dose off it needs its reason. The subject row is locked while sorafenib
periods are compared, so two concurrent saves cannot overlap.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from core import access
from core.audit import audited_save
from core.errors import DomainError, refuse_unknown_fields
from core.validators import latest_today
from randomization import selectors as randomization_selectors
from randomization.arms import Arm, StudyDrug, drug_name
from subjects.models import Subject

from . import schedule, selectors
from .models import IV_DRUGS, Cycle, DoseLevel, IvDose, OralDosingPeriod, planned_iv_dose
from .settings import schedule_settings, treatment_settings

DOSE_FIELDS = (
    "given_dose_mg",
    "administered_date",
    "delayed",
    "interrupted",
    "reduced",
    "dose_change_reason",
    "adverse_event",
)
# The fields of a sorafenib dosing period a caller gives (the drug is sorafenib unless named).
PERIOD_FIELDS = ("dose_level", "start_date", "stop_date", "dose_change_reason", "adverse_event")


class TreatmentError(DomainError):
    pass


def _randomized_on(subject: Subject) -> date:
    randomized = randomization_selectors.randomization_date(subject)
    if randomized is None:
        raise TreatmentError(f"{subject} is not randomized: no study drug is recorded.")
    return randomized


def _drug_of_arm(subject: Subject, drug: str) -> None:
    if drug not in StudyDrug.values:
        raise TreatmentError(f"{drug!r} is not a study drug of this trial.")
    drugs = selectors.study_drugs_of(subject)
    if drug not in drugs:
        arm = selectors.arm_of(subject)
        raise TreatmentError(
            f"{drug_name(drug)} is not a study drug of {subject}'s arm ({Arm(arm).label}): "
            f"record {' and '.join(drug_name(d) for d in drugs)}."
        )


def _not_before_randomization(field: str, value: date | None, randomized: date) -> None:
    if value is None:
        return
    if value < randomized:
        raise ValidationError(
            {field: f"This date is before the randomization ({randomized:%Y-%m-%d})."}
        )
    if value > latest_today():
        raise ValidationError({field: "This date is in the future."})


def _own_event(subject: Subject, adverse_event, field: str = "adverse_event"):
    if adverse_event is not None and adverse_event.subject_id != subject.pk:
        raise ValidationError({field: f"This adverse event is not one of {subject}'s."})


def _decimal(value, field: str) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValidationError({field: f"{value!r} is not a number."}) from exc


def _check_cycle_order(subject: Subject, number: int, day1: date, pk) -> None:
    others = Cycle.objects.filter(subject=subject).exclude(pk=pk)
    if others.filter(number=number).exists():
        raise ValidationError({"number": f"Cycle {number} of {subject} is already recorded."})
    before = others.filter(number__lt=number).order_by("-number").first()
    after = others.filter(number__gt=number).order_by("number").first()
    if before and day1 <= before.day1_date:
        raise ValidationError(
            {
                "day1_date": f"Cycle {number} must start after cycle {before.number} "
                f"({before.day1_date:%Y-%m-%d})."
            }
        )
    if after and day1 >= after.day1_date:
        raise ValidationError(
            {
                "day1_date": f"Cycle {number} must start before cycle {after.number} "
                f"({after.day1_date:%Y-%m-%d})."
            }
        )


def _save_dose(cycle: Cycle, drug: str, data: Mapping, *, user, reason: str, randomized: date):
    """Save one IV dose; its field errors are keyed ``<drug>_<field>`` and name the drug (the
    cycle form shows each drug's fields under that prefix)."""
    try:
        return _save_dose_fields(cycle, drug, data, user=user, reason=reason, randomized=randomized)
    except ValidationError as exc:
        if not hasattr(exc, "error_dict"):
            raise
        raise ValidationError(
            {
                f"{drug}_{name}": [
                    f"{drug_name(drug)}: {m}" for m in ValidationError(errors).messages
                ]
                for name, errors in exc.error_dict.items()
            }
        ) from exc


def _save_dose_fields(
    cycle: Cycle, drug: str, data: Mapping, *, user, reason: str, randomized: date
):
    refuse_unknown_fields(data, DOSE_FIELDS, "IV dose", error=TreatmentError)
    if drug not in IV_DRUGS:
        raise TreatmentError(f"{drug_name(drug)} is not given IV: record it as dosing periods.")
    _drug_of_arm(cycle.subject, drug)
    dose = cycle.iv_doses.filter(drug=drug).first() or IvDose(cycle=cycle, drug=drug)
    tracked = (*DOSE_FIELDS[:-1], "adverse_event_id", "planned_dose_mg")
    before = {name: getattr(dose, name) for name in tracked}
    for name, value in data.items():
        if name == "given_dose_mg":
            value = _decimal(value, name)
        elif name in ("delayed", "interrupted", "reduced"):
            value = bool(value)
        elif name == "dose_change_reason":
            value = (value or "").strip()
        setattr(dose, name, value)
    if dose.given_dose_mg is None:
        raise ValidationError({"given_dose_mg": "Give the dose given (mg)."})
    _not_before_randomization("administered_date", dose.administered_date, randomized)
    if dose.administered_date is not None:
        cycle_end = cycle.day1_date + timedelta(days=treatment_settings()["cycle_days"])
        if dose.administered_date >= cycle_end:
            raise ValidationError(
                {
                    "administered_date": f"The dose is dated after cycle {cycle.number} "
                    f"(day 1 on {cycle.day1_date:%Y-%m-%d}): record it in the next cycle."
                }
            )
    _own_event(cycle.subject, dose.adverse_event)
    dose.planned_dose_mg = planned_iv_dose(drug, cycle.weight_kg)
    if dose.pk and before == {name: getattr(dose, name) for name in tracked}:
        return dose  # unchanged: no history row
    audited_save(dose, user=user, reason=reason if dose.pk else "IV dose recorded")
    return dose


def _replan_doses(cycle: Cycle, *, user, reason: str, skip: set[str]) -> None:
    """After a weight change: the planned dose of each dose not re-entered follows it."""
    for dose in cycle.iv_doses.exclude(drug__in=skip):
        planned = planned_iv_dose(dose.drug, cycle.weight_kg)
        if planned != dose.planned_dose_mg:
            dose.planned_dose_mg = planned
            # The weight correction stands; a given dose it leaves unexplained is queried
            # (edit check TRT-003), not refused here.
            audited_save(dose, user=user, reason=reason, validate_only=["planned_dose_mg"])


def save_cycle(
    subject: Subject,
    *,
    user,
    reason: str = "",
    cycle: Cycle | None = None,
    number: int,
    day1_date: date,
    weight_kg,
    doses: Mapping[str, Mapping] | None = None,
) -> Cycle:
    """Record (or, with ``cycle`` and ``reason``, correct) a cycle and its IV doses."""
    access.require_data_entry(user, cycle or subject)
    randomized = _randomized_on(subject)
    if number is None or int(number) < 1:
        raise ValidationError({"number": "Give the cycle number (1, 2, 3…)."})
    if day1_date is None:
        raise ValidationError({"day1_date": "Give the date of the cycle's day 1."})
    weight = _decimal(weight_kg, "weight_kg")
    if weight is None:
        raise ValidationError({"weight_kg": "Give the body weight (kg) at this cycle."})
    _not_before_randomization("day1_date", day1_date, randomized)
    for drug in doses or {}:
        _drug_of_arm(subject, str(drug))
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        _check_cycle_order(subject, int(number), day1_date, cycle.pk if cycle else None)
        if cycle is None:
            cycle = Cycle(subject=subject)
        else:
            cycle = Cycle.objects.select_for_update().get(pk=cycle.pk)
        cycle.number, cycle.day1_date, cycle.weight_kg = int(number), day1_date, weight
        cycle.nominal_day1 = schedule.cycle_day1(randomized, cycle.number, schedule_settings())
        adding = cycle.pk is None
        if (
            adding
            or Cycle.objects.filter(pk=cycle.pk)
            .exclude(number=cycle.number, day1_date=cycle.day1_date, weight_kg=cycle.weight_kg)
            .exists()
        ):
            audited_save(cycle, user=user, reason="Cycle recorded" if adding else reason)
        for drug, data in (doses or {}).items():
            _save_dose(cycle, str(drug), data, user=user, reason=reason, randomized=randomized)
        if not adding:
            _replan_doses(cycle, user=user, reason=reason, skip={str(d) for d in doses or {}})
    return cycle


def _check_no_overlap(subject: Subject, start: date, stop: date | None, pk) -> None:
    others = OralDosingPeriod.objects.filter(subject=subject).exclude(pk=pk)
    for other in others:
        other_stop = other.stop_date or date.max
        if start <= other_stop and (stop or date.max) >= other.start_date:
            until = f"{other.stop_date:%Y-%m-%d}" if other.stop_date else "ongoing"
            raise ValidationError(
                {
                    "start_date": "This period overlaps the period "
                    f"{other.start_date:%Y-%m-%d} to {until} "
                    f"({other.get_dose_level_display()}): stop that one first."
                }
            )


def save_oral_period(
    subject: Subject,
    *,
    user,
    reason: str = "",
    period: OralDosingPeriod | None = None,
    dose_level: str,
    start_date: date,
    stop_date: date | None = None,
    dose_change_reason: str = "",
    adverse_event=None,
    drug: str = StudyDrug.SORAFENIB,
) -> OralDosingPeriod:
    """Record (or, with ``period`` and ``reason``, correct) a sorafenib dosing period."""
    access.require_data_entry(user, period or subject)
    randomized = _randomized_on(subject)
    _drug_of_arm(subject, drug)
    if dose_level not in DoseLevel.values:
        raise ValidationError(
            {
                "dose_level": "Choose the dose level: 800 mg/day, 400 mg/day, 400 mg every other "
                "day, or held."
            }
        )
    if start_date is None:
        raise ValidationError({"start_date": "Give the start date of the period."})
    _not_before_randomization("start_date", start_date, randomized)
    _not_before_randomization("stop_date", stop_date, randomized)
    _own_event(subject, adverse_event)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        _check_no_overlap(subject, start_date, stop_date, period.pk if period else None)
        if period is None:
            period = OralDosingPeriod(subject=subject, drug=drug)
        period.dose_level = dose_level
        period.start_date, period.stop_date = start_date, stop_date
        period.dose_change_reason = (dose_change_reason or "").strip()
        period.adverse_event = adverse_event
        audited_save(period, user=user, reason=reason if period.pk else "Dosing period recorded")
    return period
