"""Demo exposure: a course of study drug for every randomized subject, per arm.

``course_of`` dates each subject's course (``randomization.demo``'s ``ctx.plan``) on the visit
schedule, for this seeder and those above it. Records go through ``services`` so the demo has
the audit trail sites make; a few deliberate dose changes and one weight correction (an edit
check TRT-003 query) give the pages something to show. The large demo (``ctx.bulk``) writes the
same courses in bulk, checked by the models' own rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from core import access
from core.demo import bulk_insert, check_rules, chunks
from core.roles import Role
from randomization.arms import Arm, StudyDrug
from randomization.demo import followed_until
from subjects.models import SubjectStatus

from . import schedule, services
from .models import Cycle, DoseLevel, IvDose, OralDosingPeriod, planned_iv_dose
from .settings import schedule_settings

TORI, BEV, SORA = StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB, StudyDrug.SORAFENIB
REDUCTION_REASON = "Proteinuria grade 2: bevacizumab reduced to 10 mg/kg"
DELAY_REASON = "Hypertension grade 3: cycle delayed until blood pressure controlled"
HOLD_REASON = "Hand-foot skin reaction grade 3: sorafenib held until grade 1 or less"
SORAFENIB_REASON = "Hand-foot skin reaction grade 2: sorafenib reduced to 400 mg/day"
RESUMED_REASON = "Hand-foot skin reaction grade 3: sorafenib resumed at 400 mg/day"
REDUCED_FROM, DELAYED_CYCLE = 3, 4  # the cycle bevacizumab is reduced from; the cycle delayed


def _weight(rng) -> Decimal:
    return Decimal(rng.randint(520, 820)) / 10


def _drift(rng, weight: Decimal) -> Decimal:
    return max(Decimal("40"), weight + Decimal(rng.randint(-10, 10)) / 10)


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


@dataclass
class Course:
    """A randomized subject's course in dates (default demo): what the seeders record."""

    start: date  # the randomization date
    arm: str
    cycles: list[date] = field(default_factory=list)  # day 1 of each cycle
    scans: list[date] = field(default_factory=list)  # the tumor assessments
    progression_on: date | None = None  # the assessment that shows the progression
    end_reason: str | None = None  # end of treatment: progression, toxicity, withdrawal, death
    last_dose: date | None = None
    death_on: date | None = None
    withdrawn_on: date | None = None


def course_of(ctx, subject) -> Course:
    """The subject's course (``randomization.demo`` decided it; computed once, kept in its plan):
    the tumor assessments on the schedule (a day or so off the target) up to the progression or
    the end of follow-up, the end of treatment at the first of the progression, the planned stop
    and the days before a death, the cycles every 21 days until then."""
    plan = ctx.plan[subject.pk]
    if "dates" in plan:
        return plan["dates"]
    rng, s = ctx.rng, schedule_settings()
    start, until = plan["randomized_on"], followed_until(ctx, subject)
    course = Course(start=start, arm=plan["arm"], death_on=plan.get("death_on"))
    progression = plan.get("progression_from")
    number = 1
    while True:
        week = schedule.tumor_assessment_week(number, s)
        day = start + timedelta(weeks=week, days=rng.choice((-1, 0, 0, 1, 2)))
        if day > until:
            break
        course.scans.append(day)
        if progression and day >= progression:
            course.progression_on = day
            break
        number += 1
    ends = []
    if course.progression_on:
        ends.append((course.progression_on - timedelta(days=1), "progression"))
    if plan.get("stop"):
        reason, on = plan["stop"]
        ends.append((on, reason))
        if reason == "withdrawal":
            course.withdrawn_on = on
    if course.death_on:
        ends.append((course.death_on - timedelta(days=rng.randint(4, 10)), "death"))
    end, course.end_reason = min(ends) if ends else (ctx.today, None)
    course.cycles = _course_days(start, max(start, end), rng)
    if course.end_reason:
        course.last_dose = course.cycles[-1] if course.arm == Arm.A else max(start, end)
    plan["dates"] = course
    return course


def _record_ae(ctx, subject, term: str, grade: int, onset: date, end: date, causality, **more):
    """An adverse event of the course, through the service (ended, or ongoing if after today)."""
    from adverse_events import services as ae_services
    from adverse_events.models import AeOutcome, CtcaeTerm

    end = min(end, followed_until(ctx, subject))
    return ae_services.record_adverse_event(
        subject,
        user=ctx.site_user(Role.SITE_STAFF, subject.site),
        term=CtcaeTerm.objects.get(term=term),
        grade=grade,
        onset_date=onset,
        end_date=end,
        ongoing=False,
        outcome=AeOutcome.RECOVERED,
        causality=causality,
        **more,
    )


def _c(causality, action) -> dict:
    return {"causality": causality, "action_taken": action}


def _dose_change_ae(ctx, subject, course: Course, done: dict):
    """The AE behind arm A's dose change in this subject's course, if it is the one: the first
    subject with 5 cycles gets the bevacizumab reduction, the next with more than 4 the delay.
    ("reduced" or "delayed", the AE), or (None, None)."""
    from adverse_events.models import ActionTaken as Action
    from adverse_events.models import Causality

    if course.arm != Arm.A:
        return None, None
    if "reduced" not in done and len(course.cycles) >= 5:
        done["reduced"] = subject
        onset = course.cycles[REDUCED_FROM - 2] + timedelta(days=12)
        causality = {
            TORI: _c(Causality.UNLIKELY, Action.DOSE_NOT_CHANGED),
            BEV: _c(Causality.PROBABLE, Action.DOSE_REDUCED),
        }
        ae = _record_ae(ctx, subject, "Proteinuria", 2, onset, onset + timedelta(40), causality)
        return "reduced", ae
    if "delayed" not in done and len(course.cycles) > DELAYED_CYCLE:
        done["delayed"] = subject
        nominal = schedule.cycle_day1(course.start, DELAYED_CYCLE, schedule_settings())
        course.cycles[DELAYED_CYCLE - 1] = nominal + timedelta(days=3)  # the window's last day
        onset = nominal - timedelta(days=4)
        causality = {
            TORI: _c(Causality.UNLIKELY, Action.DRUG_INTERRUPTED),
            BEV: _c(Causality.PROBABLE, Action.DRUG_INTERRUPTED),
        }
        ae = _record_ae(
            ctx,
            subject,
            "Hypertension",
            3,
            onset,
            onset + timedelta(days=12),
            causality,
            treatment_given=True,
            treatment_details="Amlodipine 5 mg daily",
        )
        return "delayed", ae
    return None, None


def _iv_doses(number: int, day1: date, weight: Decimal, change, ae) -> dict:
    doses = {
        TORI: {"given_dose_mg": Decimal("240"), "administered_date": day1},
        BEV: {"given_dose_mg": planned_iv_dose(BEV, weight), "administered_date": day1},
    }
    if change == "reduced" and number >= REDUCED_FROM:
        doses[BEV].update(
            given_dose_mg=(Decimal("10") * weight).quantize(Decimal("0.1")),
            reduced=True,
            dose_change_reason=REDUCTION_REASON,
            adverse_event=ae,
        )
    if change == "delayed" and number == DELAYED_CYCLE:
        for drug in (TORI, BEV):
            doses[drug].update(delayed=True, dose_change_reason=DELAY_REASON, adverse_event=ae)
    return doses


def seed(ctx):
    if ctx.bulk:
        _seed_bulk(ctx)
        return
    randomized = [s for s in ctx.subjects if "arm" in ctx.plan[s.pk]]
    if not randomized:
        ctx.write("No randomized subjects: no study drug recorded.")
        return
    cycles = periods = 0
    done = {}  # "reduced", "delayed", "sorafenib" -> the subject
    for subject in randomized:
        course = course_of(ctx, subject)
        user = ctx.site_user(Role.SITE_STAFF, subject.site)
        weight = _weight(ctx.rng)
        change, ae = _dose_change_ae(ctx, subject, course, done)
        for number, day1 in enumerate(course.cycles, start=1):
            doses = _iv_doses(number, day1, weight, change, ae) if course.arm == Arm.A else {}
            services.save_cycle(
                subject, user=user, number=number, day1_date=day1, weight_kg=weight, doses=doses
            )
            cycles += 1
            weight = _drift(ctx.rng, weight)
        if course.arm == Arm.B:
            reduce = "sorafenib" not in done and (_end(ctx, course) - course.start).days >= 70
            periods += _sorafenib_course(ctx, subject, user, course, reduce=reduce)
            if reduce:
                done["sorafenib"] = subject
    ctx.write(
        f"Study drug: {cycles} cycles and {periods} sorafenib periods for {len(randomized)} "
        f"randomized subjects"
        + (
            f"; bevacizumab reduced (AE behind it) at {done['reduced']}"
            if "reduced" in done
            else ""
        )
        + (f"; a cycle delayed for an AE at {done['delayed']}" if "delayed" in done else "")
        + (
            f"; sorafenib held, then 400 mg/day, at {done['sorafenib']}"
            if "sorafenib" in done
            else ""
        )
    )


def _end(ctx, course: Course) -> date:
    return course.last_dose or ctx.today


def _sorafenib_course(ctx, subject, user, course: Course, *, reduce: bool) -> int:
    """Sorafenib 800 mg/day from the randomization to the last dose (ongoing when none); with
    ``reduce``, held for a week after a hand-foot skin reaction five weeks or so in, then
    400 mg/day. The number of periods."""
    from adverse_events.models import ActionTaken, Causality

    start, stop = course.start, course.last_dose
    if not reduce:
        services.save_oral_period(
            subject, user=user, dose_level=DoseLevel.FULL, start_date=start, stop_date=stop
        )
        return 1
    held = start + timedelta(days=35 + ctx.rng.randint(0, 10))
    resumed = held + timedelta(days=7)
    ae = _record_ae(
        ctx,
        subject,
        "Palmar-plantar erythrodysesthesia syndrome",
        3,
        held - timedelta(days=2),
        held + timedelta(days=20),
        {SORA: _c(Causality.DEFINITE, ActionTaken.DOSE_REDUCED)},
        treatment_given=True,
        treatment_details="Urea 10% cream twice daily",
    )
    for level, first, last, reason in (
        (DoseLevel.FULL, start, held - timedelta(days=1), ""),
        (DoseLevel.HELD, held, resumed - timedelta(days=1), HOLD_REASON),
        (DoseLevel.REDUCED_400, resumed, stop, RESUMED_REASON),
    ):
        services.save_oral_period(
            subject,
            user=user,
            dose_level=level,
            start_date=first,
            stop_date=last,
            dose_change_reason=reason,
            adverse_event=ae if reason else None,
        )
    return 3


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
