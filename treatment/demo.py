"""Demo exposure: a course of study drug for every randomized subject, per arm.

Runs after ``adverse_events.demo`` (the layer order), so a dose change can name the AE that
caused it.

* Arm A: a cycle every 21 days from the randomization to today (or the end of treatment), on day
  1 or a day or two later, the weight drifting a little; toripalimab 240 mg and bevacizumab
  15 mg/kg. One subject's bevacizumab is reduced (10 mg/kg) with its reason and the AE behind it.
* Arm B: a cycle visit (weight) every 21 days and sorafenib 800 mg/day from the randomization;
  one subject drops to 400 mg/day after a hand-foot skin reaction, when the course is long
  enough to hold two periods.

The default demo goes through ``services`` (an audit trail as sites make it). Its subjects are
randomized on the day the demo is seeded, so their course is the first cycle; a long course
shows in the large demo. ``seed_follow_up`` then corrects one arm A weight, which leaves the
bevacizumab given more than 10 % off 15 mg/kg without a reason: an edit check (TRT-003) query.

The large demo (``ctx.bulk``) writes each randomized subject's whole course (randomization to
the end of treatment or today) in bulk, with the values the services would give, checked by the
models' own rules (``core.demo.check_rules``).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from core import access
from core.demo import bulk_insert, check_rules, chunks
from core.roles import Role
from randomization.arms import Arm, StudyDrug
from subjects.models import SubjectStatus

from . import schedule, selectors, services
from .models import Cycle, DoseLevel, IvDose, OralDosingPeriod, planned_iv_dose
from .settings import schedule_settings

TORI, BEV, SORA = StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB, StudyDrug.SORAFENIB
REDUCTION_REASON = "Proteinuria grade 2: bevacizumab reduced to 10 mg/kg"
SORAFENIB_REASON = "Hand-foot skin reaction grade 2: sorafenib reduced to 400 mg/day"


def _weight(rng) -> Decimal:
    return Decimal(rng.randint(520, 820)) / 10


def _drift(rng, weight: Decimal) -> Decimal:
    return max(Decimal("40"), weight + Decimal(rng.randint(-10, 10)) / 10)


def _cause(subject, drug):
    """The subject's AE that changed ``drug`` (reduced or interrupted), else None."""
    from adverse_events.models import ActionTaken, AeCausality

    row = (
        AeCausality.objects.filter(
            adverse_event__subject=subject,
            drug=drug,
            action_taken__in=[ActionTaken.DOSE_REDUCED, ActionTaken.DRUG_INTERRUPTED],
        )
        .select_related("adverse_event")
        .order_by("adverse_event__ae_number")
        .first()
    )
    return row.adverse_event if row else None


def _course_days(start: date, end: date, rng) -> list[date]:
    """Day 1 of each cycle from ``start`` to ``end``: nominal, sometimes 1-2 days late."""
    s = schedule_settings()
    days, number = [], 1
    while True:
        nominal = schedule.cycle_day1(start, number, s)
        day = nominal if number == 1 else nominal + timedelta(days=rng.choice((0, 0, 0, 1, 2)))
        if day > end:
            return days
        days.append(day)
        number += 1


def seed(ctx):
    if ctx.bulk:
        _seed_bulk(ctx)
        return
    randomized = []
    for subject in ctx.subjects:
        subject.refresh_from_db()
        arm = selectors.arm_of(subject)
        if arm is not None:
            randomized.append((subject, arm))
    if not randomized:
        ctx.write("No randomized subjects: no study drug recorded.")
        return
    cycles = periods = 0
    reduced_a = reduced_b = None
    for subject, arm in randomized:
        user = ctx.site_user(Role.SITE_STAFF, subject.site)
        start = selectors.randomization_date(subject)
        end = ctx.today if subject.status == SubjectStatus.RANDOMIZED else subject.status_date
        weight = _weight(ctx.rng)
        for number, day1 in enumerate(_course_days(start, end or ctx.today, ctx.rng), start=1):
            doses = {}
            if arm == Arm.A:
                doses = {
                    TORI: {"given_dose_mg": Decimal("240"), "administered_date": day1},
                    BEV: {
                        "given_dose_mg": planned_iv_dose(BEV, weight),
                        "administered_date": day1,
                    },
                }
                if reduced_a is None and number == 1:
                    # The first arm A subject: bevacizumab reduced for proteinuria.
                    reduced_a = subject
                    doses[BEV].update(
                        given_dose_mg=(Decimal("10") * weight).quantize(Decimal("0.1")),
                        reduced=True,
                        dose_change_reason=REDUCTION_REASON,
                        adverse_event=_cause(subject, BEV),
                    )
            services.save_cycle(
                subject, user=user, number=number, day1_date=day1, weight_kg=weight, doses=doses
            )
            cycles += 1
            weight = _drift(ctx.rng, weight)
        if arm == Arm.B:
            made = _sorafenib_course(ctx, subject, user, start, end, reduce=reduced_b is None)
            periods += made
            if made > 1:
                reduced_b = subject
    ctx.write(
        f"Study drug: {cycles} cycles and {periods} sorafenib periods for {len(randomized)} "
        f"randomized subjects"
        + (f"; bevacizumab reduced with its reason at {reduced_a}" if reduced_a else "")
        + (f"; sorafenib reduced to 400 mg/day at {reduced_b}" if reduced_b else "")
    )


def _sorafenib_course(ctx, subject, user, start, end, *, reduce: bool) -> int:
    """Sorafenib 800 mg/day from ``start``; when the course is long enough and ``reduce``,
    400 mg/day from its middle (the reason and the AE behind it). The number of periods."""
    ongoing = subject.status == SubjectStatus.RANDOMIZED
    stop = None if ongoing else end
    last_day = end or ctx.today
    if reduce and (last_day - start).days >= 14:
        switch = start + timedelta(days=(last_day - start).days // 2)
        services.save_oral_period(
            subject,
            user=user,
            dose_level=DoseLevel.FULL,
            start_date=start,
            stop_date=switch - timedelta(days=1),
        )
        services.save_oral_period(
            subject,
            user=user,
            dose_level=DoseLevel.REDUCED_400,
            start_date=switch,
            stop_date=stop,
            dose_change_reason=SORAFENIB_REASON,
            adverse_event=_cause(subject, SORA),
        )
        return 2
    services.save_oral_period(
        subject, user=user, dose_level=DoseLevel.FULL, start_date=start, stop_date=stop
    )
    return 1


def seed_follow_up(ctx):
    """A weight corrected after the dose was given: bevacizumab now > 10 % off 15 mg/kg without
    a reason (TRT-003 will query it)."""
    if ctx.bulk:
        return
    doses = (
        IvDose.objects.filter(drug=BEV, reduced=False, cycle__subject__in=ctx.subjects)
        .select_related("cycle__subject__site")
        .order_by("-cycle__subject__sequence", "-cycle__number")
    )
    # A subject whose casebook is open (the monitoring demo freezes or locks some).
    dose = next(
        (
            d
            for d in doses
            if access.can_enter_data(ctx.site_user(Role.SITE_STAFF, d.cycle.subject.site), d)
        ),
        None,
    )
    if dose is None:
        return
    cycle = dose.cycle
    heavier = (cycle.weight_kg * Decimal("1.2")).quantize(Decimal("0.1"))
    services.save_cycle(
        cycle.subject,
        user=ctx.site_user(Role.SITE_STAFF, cycle.subject.site),
        reason="Weight re-read from the nursing chart",
        cycle=cycle,
        number=cycle.number,
        day1_date=cycle.day1_date,
        weight_kg=heavier,
    )
    ctx.write(
        f"Exposure the edit checks will query: {cycle.subject} cycle {cycle.number} weight "
        f"corrected to {heavier} kg after bevacizumab {dose.given_dose_mg} mg was given"
    )


# --- the bulk path -------------------------------------------------------------------------------


def _seed_bulk(ctx):
    """Each randomized subject's course, from randomization to the end of treatment (its status
    date) or today: cycles with their IV doses (arm A), one cycle visit per 21 days and
    sorafenib periods (arm B); about 1 subject in 8 has a reduction with its reason."""
    s = schedule_settings()
    randomized = [x for x in ctx.subjects if "arm" in ctx.plan[x.pk]]
    total_cycles = total_doses = total_periods = done = 0

    def coordinator(record):
        subject = record.cycle.subject if isinstance(record, IvDose) else record.subject
        return ctx.site_user(Role.SITE_STAFF, subject.site)

    for part in chunks(randomized):
        cycles, plans, periods = [], [], []
        for subject in part:
            plan = ctx.plan[subject.pk]
            start = plan["randomized_on"]
            on_treatment = subject.status == SubjectStatus.RANDOMIZED
            end = ctx.today if on_treatment else (subject.status_date or ctx.today)
            weight = _weight(ctx.rng)
            reduce_from = ctx.rng.randint(2, 6) if ctx.rng.random() < 0.125 else None
            for number, day1 in enumerate(_course_days(start, end, ctx.rng), start=1):
                cycle = Cycle(
                    subject=subject,
                    number=number,
                    day1_date=day1,
                    nominal_day1=schedule.cycle_day1(start, number, s),
                    weight_kg=weight,
                )
                check_rules(cycle)
                cycles.append(cycle)
                plans.append(
                    (cycle, plan["arm"], reduce_from is not None and number >= reduce_from)
                )
                weight = _drift(ctx.rng, weight)
            if plan["arm"] == Arm.B:
                periods += _bulk_periods(ctx, subject, start, end, on_treatment, reduce_from)
            done += 1
        bulk_insert(Cycle, cycles, user_of=coordinator)
        doses = []
        for cycle, arm, reduced in plans:
            if arm != Arm.A:
                continue
            for drug in (TORI, BEV):
                planned = planned_iv_dose(drug, cycle.weight_kg)
                given = planned
                if drug == BEV and reduced:
                    given = (Decimal("10") * cycle.weight_kg).quantize(Decimal("0.1"))
                dose = IvDose(
                    cycle=cycle,
                    drug=drug,
                    planned_dose_mg=planned,
                    given_dose_mg=given,
                    administered_date=cycle.day1_date,
                    reduced=given != planned,
                    dose_change_reason=REDUCTION_REASON if given != planned else "",
                )
                check_rules(dose)
                doses.append(dose)
        bulk_insert(IvDose, doses, user_of=coordinator)
        for period in periods:
            check_rules(period)
        bulk_insert(OralDosingPeriod, periods, user_of=coordinator)
        total_cycles += len(cycles)
        total_doses += len(doses)
        total_periods += len(periods)
        ctx.progress(f"Study drug: {total_cycles} cycles for {done}/{len(randomized)} subjects")
    ctx.write(
        f"Study drug: {total_cycles} cycles, {total_doses} IV doses and {total_periods} "
        f"sorafenib periods for {len(randomized)} randomized subjects"
    )


def _bulk_periods(ctx, subject, start, end, on_treatment, reduce_from) -> list:
    stop = None if on_treatment else end
    if reduce_from is None or (end - start).days < 21 * reduce_from:
        return [
            OralDosingPeriod(
                subject=subject, dose_level=DoseLevel.FULL, start_date=start, stop_date=stop
            )
        ]
    switch = start + timedelta(days=21 * (reduce_from - 1))
    return [
        OralDosingPeriod(
            subject=subject,
            dose_level=DoseLevel.FULL,
            start_date=start,
            stop_date=switch - timedelta(days=1),
        ),
        OralDosingPeriod(
            subject=subject,
            dose_level=DoseLevel.REDUCED_400,
            start_date=switch,
            stop_date=stop,
            dose_change_reason=SORAFENIB_REASON,
        ),
    ]
