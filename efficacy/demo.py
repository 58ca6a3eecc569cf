"""Demo tumor assessments: baseline lesions, then each randomized subject's assessments.

Through the services, so the demo has the audit trail sites make. Arm A responds more and
progresses later than arm B, which gives the endpoints report two distinct curves; one
investigator response deliberately differs from the derived one (edit check REC-001).
The large demo assesses only its first ``BULK_COURSES`` subjects (no bulk path yet).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.roles import Role
from randomization.arms import Arm
from randomization.selectors import arm_of, randomization_dates
from treatment.demo import course_of

from . import recist, selectors, services

BULK_COURSES = 100  # subjects with tumor assessments in a large (bulk) demo
INTERVAL = 42  # days between assessments of the bulk demo (every 6 weeks)
LIVER_SITES = ("Segment VIII", "Segment VI", "Segment IV", "Segment II")


def _round(value: float) -> Decimal:
    return Decimal(str(round(max(value, 0), 0)))


def seed(ctx):
    if ctx.bulk:
        # No bulk path (one insert per table with its history rows) yet: the first
        # BULK_COURSES randomized subjects get their courses through the services.
        subjects = [s for s in ctx.subjects if "arm" in ctx.plan.get(s.pk, {})][:BULK_COURSES]
    else:
        subjects = [s for s in ctx.subjects if "arm" in ctx.plan.get(s.pk, {})]
    randomized = randomization_dates([s.pk for s in subjects])
    courses = {"assessments": 0, "PD": 0, "responders": 0}
    disagreement = False
    for index, subject in enumerate(subjects):
        subject.refresh_from_db()
        start = randomized.get(subject.pk)
        if start is None:
            continue
        coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
        targets, non_targets = _baseline(ctx, subject, coordinator, start, index)
        if ctx.bulk:
            arm = arm_of(subject)
            end = subject.status_date if subject.status in ("died", "withdrawn") else ctx.today
            days = [start + timedelta(days=INTERVAL * k) for k in range(1, 40)]
            days = [d for d in days if d <= min(end or ctx.today, ctx.today)]
            plan = _course(ctx, arm, index, len(days))
        else:
            course = course_of(ctx, subject)
            days = course.scans
            shape = ctx.plan[subject.pk]["course"]["response"]
            plan = _shaped(ctx, shape, len(days), progresses=course.progression_on is not None)
        history = []
        for k, day in enumerate(days):
            shrink, new_lesion = plan[k]
            measured = {t.number: _round(float(t.diameter) * shrink) for t in targets}
            states = {n.number: "absent" if shrink == 0 else "present" for n in non_targets}
            history.append(
                recist.Assessment(
                    day,
                    {t.pk: measured[t.number] for t in targets},
                    {n.pk: states[n.number] for n in non_targets},
                    new_lesion,
                )
            )
            derived = recist.derive(
                [recist.TargetLesion(t.pk, t.diameter, t.lymph_node) for t in targets],
                [n.pk for n in non_targets],
                history,
            )[-1]
            response = derived.overall.value
            if not disagreement and response == recist.Response.SD and k >= 1:
                response, disagreement = recist.Response.PR.value, True  # REC-001 will ask
            services.record_assessment(
                subject,
                user=coordinator,
                assessment_date=day,
                method="CT" if index % 4 else "MRI",
                measurements=measured,
                non_targets=states,
                new_lesions=new_lesion,
                new_lesions_description="New hypervascular lesion, segment III"
                if new_lesion
                else "",
                investigator_response=response,
            )
            courses["assessments"] += 1
            if derived.overall == recist.Response.PD:
                courses["PD"] += 1
                break
        best = selectors.best_response(subject)
        if best and best.response in (recist.Response.CR, recist.Response.PR):
            courses["responders"] += 1
    ctx.write(
        f"Tumor assessments: {courses['assessments']} for {len(subjects)} randomized subjects; "
        f"{courses['PD']} progressions, {courses['responders']} confirmed responses"
    )


def _shaped(ctx, shape: str, n: int, *, progresses: bool) -> list[tuple[float, bool]]:
    """(size relative to baseline, new lesion) at each of ``n`` assessments of a default-demo
    course: shrinking to a CR or a PR, or stable, and (``progresses``) growing at the last one
    (+35 % and more from the nadir) or showing a new lesion."""
    rng = ctx.rng
    course, size = [], 1.0
    for k in range(n):
        if progresses and k == n - 1:
            grown = rng.random() < 0.5
            course.append((size * 1.35 + 0.1, False) if grown else (size, True))
            break
        if shape == "CR":
            size = max(size - 0.35, 0.0)
        elif shape == "PR":
            size = max(size - rng.uniform(0.18, 0.25), 0.5)
        else:
            size = min(max(size + rng.uniform(-0.08, 0.1), 0.75), 1.12)
        course.append((size, False))
    return course


def _baseline(ctx, subject, coordinator, start, index):
    day = max(subject.consent_date, start - timedelta(days=ctx.rng.randint(3, 20)))
    lesions = [("liver", LIVER_SITES[index % 4], ctx.rng.randint(25, 80))]
    if index % 2:
        lesions.append(("liver", LIVER_SITES[(index + 1) % 4], ctx.rng.randint(12, 40)))
    if index % 3 == 0:
        lesions.append(("lymph_node", "Portocaval node", ctx.rng.randint(15, 28)))
    if index % 5 == 1:
        lesions.append(("lung", "Right lower lobe", ctx.rng.randint(10, 22)))
    targets = [
        services.add_target_lesion(
            subject,
            user=coordinator,
            organ=organ,
            location=location,
            diameter=diameter,
            baseline_date=day,
            method="CT",
        )
        for organ, location, diameter in lesions
    ]
    non_targets = []
    if index % 3 == 1:
        non_targets.append(
            services.add_non_target_lesion(
                subject,
                user=coordinator,
                organ="portal_vein",
                location="Right portal vein branch",
                baseline_date=day,
                method="CT",
            )
        )
    return targets, non_targets


def _course(ctx, arm, index, n) -> list[tuple[float, bool]]:
    """(size relative to baseline, new lesion) at each assessment of one subject's course."""
    rng = ctx.rng
    responder = arm == Arm.A and index % 3 == 0
    progresses_at = None
    if index % 2 == 0 or arm == Arm.B:
        progresses_at = rng.randint(2, 5) if arm == Arm.A else rng.randint(1, 3)
    if responder and index % 18 == 0:
        progresses_at = None  # the complete responder
    course, size = [], 1.0
    for k in range(n):
        if progresses_at is not None and k == progresses_at:
            if rng.random() < 0.5:
                course.append((size, True))  # a new lesion
            else:
                course.append((size * 1.35 + 0.1, False))
            continue
        if responder:
            size = max(size - 0.25, 0.0 if index % 18 == 0 else 0.45)
        else:
            size = min(max(size + rng.uniform(-0.08, 0.1), 0.75), 1.12)
        course.append((size, False))
    return course
