"""Demo randomization: the statistician's list (fixed seed), the subjects' allocations, and the
course each randomized subject will have (``ctx.plan``, read by the seeders above).

Past allocations are written as ``services.randomize`` writes them, on their day at a daytime
hour at the sites (so the site's date is the intended one); today's go through the service
itself. One ECOG is corrected afterwards so the balance report shows a stratification mismatch
(RAND-001, SUBJ-001). Arm A responds more and progresses later than arm B.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

from django.db import transaction
from django.utils import timezone

from core.demo import bulk_insert, check_rules, chunks
from core.errors import DomainError
from core.roles import Role
from subjects import demo as subjects_demo
from subjects import services as subject_services
from subjects.models import Subject

from . import listgen, services
from .arms import Arm
from .models import Allocation, Slot

DEMO_SEED = 20201001
ECOG_REASON = "ECOG corrected after source data verification"

# The courses of the default demo's randomized subjects, per arm, given in turn to the subjects of
# the arm in the order of their randomization (the longest followed first): the best response's
# shape ("CR", "PR", "SD"), and in days after randomization the progression (documented at the
# first scheduled tumor assessment from then), the end of treatment for another reason, the death.
COURSES = {
    Arm.A: [
        {"response": "PR", "progression": 260, "death": 410},
        {"response": "CR"},
        {"response": "SD", "progression": 120},
        {"response": "PR", "stop": ("toxicity", 150)},
        {"response": "SD", "progression": 170, "death": 300},
        {"response": "PR"},
        {"response": "SD", "stop": ("withdrawal", 75)},
        {"response": "SD"},
    ],
    Arm.B: [
        {"response": "SD", "progression": 85, "death": 240},
        {"response": "SD", "progression": 125},
        {"response": "SD", "death": 150},  # death without progression (a fatal adverse event)
        {"response": "PR", "progression": 190},
        {"response": "SD", "progression": 40, "death": 170},
        {"response": "SD", "stop": ("withdrawal", 60)},
        {"response": "SD", "progression": 80},
        {"response": "SD"},
    ],
}
MARGIN = 3  # days: an event planned later than today minus this does not happen


def seed(ctx):
    if ctx.bulk:
        _seed_bulk(ctx)
        return
    from eligibility import services as eligibility_services

    statistician = ctx.users[Role.STATISTICIAN][0]
    # Enough slots even if every subject fell into one stratum; a multiple of 10 fills with 4 and 6.
    slots = min(listgen.MAX_SLOTS_PER_STRATUM, max(100, -(-ctx.n_subjects // 10) * 10))
    rlist = services.generate_randomization_list(
        seed=DEMO_SEED, slots_per_stratum=slots, block_sizes=(4, 6), user=statistician
    )

    def of_stage(stage):
        return [s for s in ctx.subjects if ctx.plan[s.pk]["stage"] == stage]

    randomized = _allocate_in_the_past(ctx, rlist, of_stage(subjects_demo.RANDOMIZED))
    for i, subject in enumerate(of_stage(subjects_demo.RANDOMIZED_TODAY)):
        role = Role.SITE_STAFF if i % 2 == 0 else Role.INVESTIGATOR
        allocation = services.randomize(subject, ctx.site_user(role, subject.site))
        ctx.plan[subject.pk].update(arm=allocation.arm, randomized_on=subject.status_date)
        randomized.append(subject)
    waiting = of_stage(subjects_demo.AWAITING_RANDOMIZATION)
    for subject in waiting:  # it could be, today (the site's date)
        site_today = timezone.localdate(timezone.now(), subject.site.zoneinfo)
        eligibility_services.randomization_factors(subject, site_today)

    corrected = None
    if len(randomized) >= 3:
        corrected = randomized[1]
        _correct_ecog(ctx, [corrected])
    _plan_courses(ctx, randomized)
    arms = Counter(ctx.plan[s.pk]["arm"] for s in randomized)
    ctx.write(
        f"Randomization: list #{rlist.pk} (seed {DEMO_SEED}, 8 strata × {slots} slots), "
        f"{len(randomized)} subjects randomized (arm A {arms[Arm.A]}, arm B {arms[Arm.B]}; "
        f"{len(randomized) - len(of_stage(subjects_demo.RANDOMIZED_TODAY))} before today)"
        + (f", {waiting[0]} signed eligible and waiting to be randomized" if waiting else "")
        + (f", ECOG of {corrected} corrected after randomization (a mismatch)" if corrected else "")
    )


def _free_slots(rlist) -> dict[tuple, list]:
    """Stratum key -> its slots, the lowest last (``pop()`` takes it)."""
    free = {}
    for slot in Slot.objects.filter(rlist=rlist).select_related("stratum").order_by("sequence"):
        stratum = slot.stratum
        key = (
            stratum.macrovascular_or_extrahepatic,
            stratum.ecog,
            stratum.prior_locoregional_therapy,
        )
        free.setdefault(key, []).append(slot)
    for slots_of_stratum in free.values():
        slots_of_stratum.reverse()
    return free


def _allocate_in_the_past(ctx, rlist, subjects) -> list:
    """Each subject's allocation on its ``randomized_on`` day, at a daytime hour at the sites; the
    subjects in the order of their randomization."""
    from eligibility import services as eligibility_services

    rng = ctx.rng
    for subject in subjects:
        plan = ctx.plan[subject.pk]
        plan["allocated_at"] = ctx.at(plan["randomized_on"], rng.randint(1, 7), rng.randint(0, 59))
    free = _free_slots(rlist)
    in_order = sorted(subjects, key=lambda s: (ctx.plan[s.pk]["allocated_at"], s.pk))
    for i, subject in enumerate(in_order):
        plan = ctx.plan[subject.pk]
        on = plan["randomized_on"]
        factors = eligibility_services.randomization_factors(subject, on)
        key = (
            bool(factors.macrovascular_or_extrahepatic),
            int(factors.ecog),
            bool(factors.prior_locoregional_therapy),
        )
        slot = free[key].pop()
        user = ctx.site_user(Role.SITE_STAFF if i % 2 == 0 else Role.INVESTIGATOR, subject.site)
        allocation = _allocation(subject, slot, key, plan["allocated_at"], user)
        check_rules(allocation)
        with transaction.atomic():
            locked = Subject.objects.select_for_update().get(pk=subject.pk)
            bulk_insert(Allocation, [allocation], user=user)
            subject_services.mark_randomized(
                locked,
                user=user,
                on_date=on,
                reason=f"Randomized: number {slot.randomization_number}, arm {slot.arm}",
            )
        subject.status, subject.status_date = locked.status, locked.status_date
        plan["arm"] = slot.arm
    return in_order


def _plan_courses(ctx, randomized) -> None:
    """Each randomized subject's course (``COURSES``) into its plan, as dates: ``progression_from``
    (the tumor grows from then), ``stop`` (reason, date), ``death_on``; each only when it comes
    before today. The subjects randomized today have none of them."""
    rng = ctx.rng
    taken = Counter()
    for subject in sorted(randomized, key=lambda s: (ctx.plan[s.pk]["randomized_on"], s.pk)):
        plan = ctx.plan[subject.pk]
        start, arm = plan["randomized_on"], plan["arm"]
        if start >= ctx.today:
            plan["course"] = {"response": "SD"}
            continue
        courses = COURSES[arm]
        course = dict(courses[taken[arm] % len(courses)])
        taken[arm] += 1

        def on(days, start=start):
            day = start + timedelta(days=days + rng.randint(-7, 7))
            return day if day <= ctx.today - timedelta(days=MARGIN) else None

        plan["course"] = course
        plan["progression_from"] = on(course["progression"]) if "progression" in course else None
        plan["death_on"] = on(course["death"]) if "death" in course else None
        stop = course.get("stop")
        stop_on = on(stop[1]) if stop else None
        plan["stop"] = (stop[0], stop_on) if stop_on else None


def followed_until(ctx, subject) -> date:
    """The last day a randomized subject of the default demo is followed: the day before its
    death, its withdrawal, or today."""
    plan = ctx.plan.get(subject.pk, {})
    if plan.get("death_on"):
        return plan["death_on"] - timedelta(days=1)
    stop = plan.get("stop")
    if stop and stop[0] == "withdrawal":
        return stop[1]
    return ctx.today


def _allocation(subject, slot, stratum: tuple, at, user) -> Allocation:
    """The allocation ``services.randomize`` would record of ``slot`` at ``at`` (the demo's
    allocations in the past; ``stratum``: the factors' values, the stratum's key)."""
    return Allocation(
        subject=subject,
        slot=slot,
        stratum=slot.stratum,
        randomization_number=slot.randomization_number,
        arm=slot.arm,
        allocated_at=at,
        allocated_by=user,
        macrovascular_or_extrahepatic=stratum[0],
        ecog=stratum[1],
        prior_locoregional_therapy=stratum[2],
    )


# --- the bulk path -------------------------------------------------------------------------------


def _seed_bulk(ctx):
    """The list (generated by the service, with enough slots for the largest stratum) and the
    allocations of every subject the storylines randomize, on their randomization day: in each
    stratum, in the order of their randomization, the subjects take the slots from the first, as
    ``services.randomize`` takes the lowest free one. The arm goes into the plan. Then a few
    randomized subjects' ECOG is corrected in the CRF through the eligibility service (a
    stratification mismatch, and a voided signature)."""
    rng = ctx.rng
    randomized = [s for s in ctx.subjects if ctx.plan[s.pk].get("randomized_on")]
    for subject in randomized:
        plan = ctx.plan[subject.pk]
        f = plan["factors"]
        plan["stratum"] = (f.macrovascular_or_extrahepatic, f.ecog, f.prior_locoregional_therapy)
        plan["allocated_at"] = ctx.at(
            plan["randomized_on"], rng.randint(13, 17), rng.randint(0, 59)
        )
    per_stratum = Counter(ctx.plan[s.pk]["stratum"] for s in randomized)
    largest = max(per_stratum.values(), default=0)
    slots = max(100, -(-largest * 11 // 100) * 10)  # 10 % spare, a multiple of 10
    if slots > listgen.MAX_SLOTS_PER_STRATUM:
        raise DomainError(
            f"{largest} subjects in one stratum: more than one list's "
            f"{listgen.MAX_SLOTS_PER_STRATUM} slots per stratum. Seed fewer subjects."
        )
    statistician = ctx.users[Role.STATISTICIAN][0]
    rlist = services.generate_randomization_list(
        seed=DEMO_SEED, slots_per_stratum=slots, block_sizes=(4, 6), user=statistician
    )
    free = _free_slots(rlist)
    in_order = sorted(randomized, key=lambda s: (ctx.plan[s.pk]["allocated_at"], s.pk))
    done = 0
    for part in chunks(in_order):
        allocations = []
        for i, subject in enumerate(part):
            plan = ctx.plan[subject.pk]
            slot = free[plan["stratum"]].pop()
            role = Role.SITE_STAFF if i % 2 == 0 else Role.INVESTIGATOR
            allocation = _allocation(
                subject,
                slot,
                plan["stratum"],
                plan["allocated_at"],
                ctx.site_user(role, subject.site),
            )
            check_rules(allocation)
            allocations.append(allocation)
            plan["arm"] = slot.arm
        bulk_insert(Allocation, allocations, user_of=lambda a: a.allocated_by)
        done += len(allocations)
        ctx.progress(f"Randomization: {done}/{len(in_order)} allocations")
    few = max(1, len(randomized) // 2000)  # a handful: 5 of 10,000 subjects
    corrected = _correct_ecog(ctx, randomized[1 :: max(1, len(randomized) // few)][:few])
    ctx.write(
        f"Randomization: list #{rlist.pk} (seed {DEMO_SEED}, 8 strata × {slots} slots), "
        f"{len(randomized)} subjects randomized, ECOG of {len(corrected)} corrected after "
        "randomization (mismatches)"
    )


def _correct_ecog(ctx, subjects) -> list:
    from eligibility import services as eligibility_services

    for subject in subjects:
        current = eligibility_services.stratification_factors(subject)
        eligibility_services.save_assessment(
            subject,
            user=ctx.site_user(Role.SITE_STAFF, subject.site),
            data={"ecog": 1 - current.ecog},
            reason=ECOG_REASON,
        )
    return subjects
