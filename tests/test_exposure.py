"""Study drug exposure: cycles and IV doses (arm A), sorafenib periods (arm B), the derived
cumulative dose and relative dose intensity."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from adverse_events.services import record_adverse_event
from core.errors import AccessDenied, DomainError
from core.roles import Role
from randomization.arms import Arm, StudyDrug
from treatment import exposure, selectors, services
from treatment.models import DoseLevel, IvDose

from .builders import make_user, site_today
from .builders.ctcae import term
from .builders.treatment import (
    add_cycle,
    add_oral_period,
    full_doses,
    make_subject_randomized_days_ago,
    randomized_on,
)

TORI, BEV, SORA = StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB, StudyDrug.SORAFENIB


def refused(call, match, error=(DomainError, ValidationError)):
    with pytest.raises(error) as info:
        call()
    value = info.value
    text = " ".join(value.messages) if isinstance(value, ValidationError) else str(value)
    assert match in text, text
    return value


@pytest.fixture
def arm_a(site, coordinator):
    return make_subject_randomized_days_ago(Arm.A, site, 60, by=coordinator)


@pytest.fixture
def arm_b(site, coordinator):
    return make_subject_randomized_days_ago(Arm.B, site, 60, by=coordinator)


def test_a_drug_of_the_other_arm_is_refused(arm_a, arm_b, coordinator):
    start = randomized_on(arm_b)
    refused(
        lambda: add_cycle(arm_b, 1, by=coordinator, doses=full_doses("70", start)),
        "is not a study drug of",
    )
    refused(
        lambda: add_oral_period(arm_a, by=coordinator, start=randomized_on(arm_a)),
        "Sorafenib is not a study drug of",
    )
    assert not IvDose.objects.exists()
    # Each arm records its own drugs.
    add_cycle(arm_a, 1, by=coordinator)
    add_oral_period(arm_b, by=coordinator, start=start)


def test_bevacizumab_planned_dose_follows_the_cycle_weight(arm_a, coordinator):
    cycle = add_cycle(arm_a, 1, by=coordinator, weight_kg="62.4")
    bev = cycle.iv_doses.get(drug=BEV)
    assert bev.planned_dose_mg == Decimal("936.0")  # 15 mg/kg × 62.4 kg
    assert cycle.iv_doses.get(drug=TORI).planned_dose_mg == Decimal("240.0")  # flat
    # A corrected weight re-plans the dose; the given dose stays as given.
    services.save_cycle(
        arm_a,
        user=coordinator,
        reason="Weight transcribed wrongly",
        cycle=cycle,
        number=1,
        day1_date=cycle.day1_date,
        weight_kg="64.0",
    )
    bev.refresh_from_db()
    assert bev.planned_dose_mg == Decimal("960.0")
    assert bev.given_dose_mg == Decimal("936.0")
    assert bev.history.first().history_change_reason == "Weight transcribed wrongly"


def test_a_dose_reduction_without_a_reason_is_refused(arm_a, coordinator):
    day1 = randomized_on(arm_a)
    doses = full_doses("70", day1)
    doses[BEV] = {"given_dose_mg": "700", "administered_date": day1, "reduced": True}
    refused(lambda: add_cycle(arm_a, 1, by=coordinator, doses=doses), "Give the reason")
    # A given dose far from the planned one needs its reason too, flagged or not.
    doses[BEV] = {"given_dose_mg": "700", "administered_date": day1}
    refused(
        lambda: add_cycle(arm_a, 1, by=coordinator, doses=doses),
        "700 mg given for 1050.0 mg planned",
    )
    assert not arm_a.treatment_cycles.exists()  # the cycle is not half-saved
    doses[BEV] = {
        "given_dose_mg": "700",
        "administered_date": day1,
        "reduced": True,
        "dose_change_reason": "Proteinuria grade 2",
    }
    cycle = add_cycle(arm_a, 1, by=coordinator, doses=doses)
    assert cycle.iv_doses.get(drug=BEV).reduced


def test_a_reduced_or_held_sorafenib_period_needs_a_reason(arm_b, coordinator, ctcae):
    start = randomized_on(arm_b)
    add_oral_period(arm_b, by=coordinator, start=start, stop=start + timedelta(days=9))
    refused(
        lambda: add_oral_period(
            arm_b, by=coordinator, start=start + timedelta(days=10), level=DoseLevel.HELD
        ),
        "Give the reason for held",
    )
    ae = record_adverse_event(
        arm_b,
        user=coordinator,
        term=term("Palmar-plantar erythrodysesthesia syndrome"),
        grade=3,
        onset_date=start + timedelta(days=9),
        ongoing=True,
        outcome="not_recovered",
        causality={SORA: {"causality": "definite", "action_taken": "interrupted"}},
    )
    held = add_oral_period(
        arm_b,
        by=coordinator,
        start=start + timedelta(days=10),
        stop=start + timedelta(days=16),
        level=DoseLevel.HELD,
        why="Hand-foot skin reaction grade 3",
        adverse_event=ae,
    )
    assert held.adverse_event == ae


def test_sorafenib_periods_may_not_overlap(arm_b, coordinator):
    start = randomized_on(arm_b)
    add_oral_period(arm_b, by=coordinator, start=start)  # ongoing
    refused(
        lambda: add_oral_period(
            arm_b, by=coordinator, start=start + timedelta(days=5), level="400", why="AE"
        ),
        "overlaps the period",
    )


def test_dates_before_randomization_or_in_the_future_are_refused(arm_a, arm_b, coordinator):
    start = randomized_on(arm_a)
    refused(
        lambda: add_cycle(arm_a, 1, by=coordinator, day1=start - timedelta(days=1)),
        "before the randomization",
    )
    refused(
        lambda: add_cycle(arm_a, 1, by=coordinator, day1=timezone.localdate() + timedelta(2)),
        "in the future",
    )
    refused(
        lambda: add_oral_period(arm_b, by=coordinator, start=start - timedelta(days=3)),
        "before the randomization",
    )


def test_cycles_in_order_and_doses_inside_their_cycle(arm_a, coordinator):
    start = randomized_on(arm_a)
    add_cycle(arm_a, 2, by=coordinator)
    refused(
        lambda: add_cycle(arm_a, 1, by=coordinator, day1=start + timedelta(days=25)),
        "must start before cycle 2",
    )
    doses = full_doses("70", start + timedelta(days=30))
    refused(
        lambda: add_cycle(arm_a, 1, by=coordinator, day1=start, doses=doses),
        "record it in the next cycle",
    )


def test_an_ae_of_another_subject_is_refused(arm_a, site, coordinator, ctcae):
    other = make_subject_randomized_days_ago(Arm.A, site, 10, by=coordinator)
    ae = record_adverse_event(
        other,
        user=coordinator,
        term=term("Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality={
            TORI: {"causality": "unlikely", "action_taken": "not_changed"},
            BEV: {"causality": "probable", "action_taken": "not_changed"},
        },
    )
    day1 = randomized_on(arm_a)
    doses = full_doses("70", day1)
    doses[BEV].update(delayed=True, dose_change_reason="Hypertension", adverse_event=ae)
    refused(lambda: add_cycle(arm_a, 1, by=coordinator, doses=doses), "not one of")


def test_only_the_sites_data_entry_roles_record_exposure(arm_a, site, other_coordinator):
    monitor = make_user(Role.MONITOR, site)
    for user in (monitor, other_coordinator):
        refused(lambda u=user: add_cycle(arm_a, 1, by=u), "", error=AccessDenied)


def test_relative_dose_intensity_of_the_iv_drugs(arm_a, coordinator):
    start = randomized_on(arm_a)
    add_cycle(arm_a, 1, by=coordinator, weight_kg="60")
    # Cycle 2 delayed one week, bevacizumab reduced to 600 mg at 60 kg (10 mg/kg).
    day1 = start + timedelta(days=28)
    doses = full_doses("60", day1)
    doses[BEV].update(given_dose_mg="600", reduced=True, dose_change_reason="Proteinuria")
    doses[TORI].update(delayed=True, dose_change_reason="Proteinuria")
    add_cycle(arm_a, 2, by=coordinator, weight_kg="60", day1=day1, doses=doses)
    figures = {e.drug: e for e in selectors.subject_exposure(arm_a)}
    # Period: day 0 to day 28 + 21 = 49 days, i.e. 49/21 planned cycles.
    tori, bev = figures[TORI], figures[BEV]
    assert tori.cumulative_mg == Decimal("480.0")
    assert tori.rdi == (Decimal(480) / (Decimal(240) * 49 / 21)).quantize(Decimal("0.001"))
    assert tori.rdi == Decimal("0.857")
    assert bev.cumulative_mg == Decimal("1500.0")
    # (900/60 + 600/60) mg/kg = 25 mg/kg over 15 × 49/21 = 35 mg/kg planned.
    assert bev.rdi == Decimal("0.714")
    assert bev.reductions == 1 and tori.reductions == 1


def test_relative_dose_intensity_of_sorafenib(arm_b, coordinator):
    start = randomized_on(arm_b)
    add_oral_period(arm_b, by=coordinator, start=start, stop=start + timedelta(days=9))
    add_oral_period(
        arm_b,
        by=coordinator,
        start=start + timedelta(days=10),
        stop=start + timedelta(days=19),
        level=DoseLevel.REDUCED_400,
        why="Diarrhea grade 3",
    )
    [sora] = selectors.subject_exposure(arm_b)
    assert sora.cumulative_mg == Decimal(800 * 10 + 400 * 10)
    assert sora.rdi == Decimal("0.750")  # 12 000 mg of 800 mg × 20 days


def test_exposure_formulas_pure():
    d = date(2024, 1, 1)
    doses = [
        exposure.IvAdministration(Decimal("240"), d),
        exposure.IvAdministration(Decimal("240"), d + timedelta(days=21)),
    ]
    assert exposure.iv_rdi(doses, planned_per_cycle=Decimal(240), cycle_days=21) == 1
    assert exposure.iv_rdi([], planned_per_cycle=Decimal(240), cycle_days=21) is None
    periods = [exposure.OralPeriod(Decimal("200"), d, None)]
    as_of = d + timedelta(days=9)
    assert exposure.cumulative_oral_dose(periods, as_of=as_of) == 2000
    assert exposure.oral_rdi(periods, planned_daily_mg=Decimal(800), as_of=as_of) == Decimal(
        "0.250"
    )


# --- edit checks ---------------------------------------------------------------------------------


def found(code, subject):
    from core.edit_checks import Scope
    from treatment.edit_checks import CHECKS

    [check] = [c for c in CHECKS if c.code == code]
    return [v for v in check.find(Scope()) if v.subject_id == subject.pk]


def test_the_checks_join_the_registry():
    from queries.checks import CHECKS_BY_CODE

    codes = set(CHECKS_BY_CODE)
    assert {"TRT-001", "TRT-002", "TRT-003", "TRT-004", "TRT-005"} <= codes


def test_trt001_a_dose_of_the_other_arm_entered_around_the_service(arm_b, coordinator):
    from core.audit import audited_save

    cycle = add_cycle(arm_b, 1, by=coordinator)
    dose = IvDose(
        cycle=cycle,
        drug=TORI,
        planned_dose_mg=Decimal("240"),
        given_dose_mg=Decimal("240"),
        administered_date=cycle.day1_date,
    )
    audited_save(dose, user=coordinator)
    [violation] = found("TRT-001", arm_b)
    assert "the subject takes arm B (Sorafenib)" in violation.message
    assert found("TRT-002", arm_b) == []


def test_trt003_bevacizumab_off_the_weight_after_a_weight_correction(arm_a, coordinator):
    cycle = add_cycle(arm_a, 1, by=coordinator, weight_kg="60")  # 900 mg given
    assert found("TRT-003", arm_a) == []
    services.save_cycle(
        arm_a,
        user=coordinator,
        reason="Weight corrected",
        cycle=cycle,
        number=1,
        day1_date=cycle.day1_date,
        weight_kg="66.6",  # 999 mg planned: 900 is 9.9 % off, within the tolerance
    )
    assert found("TRT-003", arm_a) == []
    services.save_cycle(
        arm_a,
        user=coordinator,
        reason="Weight corrected again",
        cycle=cycle,
        number=1,
        day1_date=cycle.day1_date,
        weight_kg="67",  # 1005 mg: 900 is 10.4 % off
    )
    [violation] = found("TRT-003", arm_a)
    assert "Bevacizumab 900.0 mg was given at 67.0 kg" in violation.message


def test_trt002_a_sorafenib_period_of_arm_a_entered_around_the_service(arm_a, coordinator):
    from core.audit import audited_save
    from treatment.models import OralDosingPeriod

    period = OralDosingPeriod(
        subject=arm_a, dose_level=DoseLevel.FULL, start_date=randomized_on(arm_a)
    )
    audited_save(period, user=coordinator)
    [violation] = found("TRT-002", arm_a)
    assert "the subject takes arm A (Toripalimab + bevacizumab)" in violation.message


def test_trt004_cycle_day_1_out_of_its_window(arm_a, coordinator):
    start = randomized_on(arm_a)
    add_cycle(arm_a, 1, by=coordinator)
    doses = full_doses("70", start + timedelta(days=25))
    for dose in doses.values():
        dose.update(delayed=True, dose_change_reason="Grade 2 proteinuria")
    add_cycle(arm_a, 2, by=coordinator, day1=start + timedelta(days=24), doses=doses)
    assert found("TRT-004", arm_a) == []  # day 24: the last day of the window (21 + 3)
    cycle = arm_a.treatment_cycles.get(number=2)
    services.save_cycle(
        arm_a,
        user=coordinator,
        reason="Date corrected from the infusion record",
        cycle=cycle,
        number=2,
        day1_date=start + timedelta(days=25),
        weight_kg=cycle.weight_kg,
    )
    [late] = found("TRT-004", arm_a)
    assert "4 days after its scheduled day 1" in late.message


def test_trt005_next_cycle_overdue(arm_a, coordinator):
    # Randomized 60 days ago.
    start = randomized_on(arm_a)
    [none_yet] = found("TRT-005", arm_a)  # no cycle at all: cycle 1 was due on day 0
    assert none_yet.message.startswith(f"Cycle 1 was due on {start:%Y-%m-%d}")
    add_cycle(arm_a, 1, by=coordinator)
    add_cycle(arm_a, 2, by=coordinator)
    # Cycle 3 was due on day 42 (window to day 45): overdue on day 60.
    [overdue] = found("TRT-005", arm_a)
    assert overdue.message.startswith(f"Cycle 3 was due on {start + timedelta(days=42):%Y-%m-%d}")
    add_cycle(arm_a, 3, by=coordinator)
    assert found("TRT-005", arm_a) == []  # cycle 4 due on day 63: not yet
