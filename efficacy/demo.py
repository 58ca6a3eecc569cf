"""Demo tumor assessments: baseline lesions, then each randomized subject's assessments.

Through the services, so the demo has the audit trail sites make. Arm A responds more and
progresses later than arm B, which gives the endpoints report two distinct curves; one
investigator response deliberately differs from the derived one (edit check REC-001).
The large demo assesses only its first ``BULK_COURSES`` subjects, written in bulk.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from decimal import Decimal

from core.demo import bulk_insert, check_rules
from core.errors import DomainError
from core.roles import Role
from randomization.arms import Arm
from randomization.selectors import randomization_dates
from treatment.demo import course_of

from . import recist, selectors, services
from .models import (
    MAX_TARGETS,
    MAX_TARGETS_PER_ORGAN,
    NonTargetAssessment,
    NonTargetLesion,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)

BULK_COURSES = 100  # subjects with tumor assessments in a large (bulk) demo
INTERVAL = 42  # days between assessments of the bulk demo (every 6 weeks)
LIVER_SITES = ("Segment VIII", "Segment VI", "Segment IV", "Segment II")


def _round(value: float) -> Decimal:
    return Decimal(str(round(max(value, 0), 0)))


def seed(ctx):
    if ctx.bulk:
        _seed_bulk(ctx)
        return
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
        course = course_of(ctx, subject)
        days = course.scans
        shape = ctx.plan[subject.pk]["course"]["response"]
        plan = _shaped(ctx, shape, len(days), progresses=course.progression_on is not None)
        history = []
        for k, day in enumerate(days):
            derived, response, disagreement = _follow_up(
                plan[k], day, targets, non_targets, history, disagreement, k
            )
            new_lesion = plan[k][1]
            services.record_assessment(
                subject,
                user=coordinator,
                assessment_date=day,
                method=_method(index),
                measurements=history[-1].targets,
                non_targets=history[-1].non_targets,
                new_lesions=new_lesion,
                new_lesions_description=NEW_LESION if new_lesion else "",
                investigator_response=response,
            )
            courses["assessments"] += 1
            if derived.overall == recist.Response.PD:
                courses["PD"] += 1
                break
        best = selectors.best_response(subject)
        if best and best.response in (recist.Response.CR, recist.Response.PR):
            courses["responders"] += 1
    _report(ctx, courses, len(subjects))


NEW_LESION = "New hypervascular lesion, segment III"


def _method(index: int) -> str:
    return "CT" if index % 4 else "MRI"


def _follow_up(step, day, targets, non_targets, history, disagreement, k):
    """One follow-up of a course: its measurements and statuses (by lesion number, as the form
    gives them) appended to ``history``; (the derived time point, the investigator's response,
    whether the demo's one disagreement is made now or before). The first stable disease after
    the first assessment is called a partial response by the investigator (REC-001 will ask)."""
    shrink, new_lesion = step
    measured = {t.number: _round(float(t.diameter) * shrink) for t in targets}
    states = {n.number: "absent" if shrink == 0 else "present" for n in non_targets}
    history.append(recist.Assessment(day, measured, states, new_lesion))
    derived = recist.derive(
        [recist.TargetLesion(t.number, t.diameter, t.lymph_node) for t in targets],
        [n.number for n in non_targets],
        history,
    )[-1]
    response = derived.overall.value
    if not disagreement and response == recist.Response.SD and k >= 1:
        response, disagreement = recist.Response.PR.value, True
    return derived, response, disagreement


def _report(ctx, courses: dict, n: int) -> None:
    ctx.write(
        f"Tumor assessments: {courses['assessments']} for {n} randomized subjects; "
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


def _baseline_plan(ctx, subject, start, index) -> tuple:
    """(baseline scan date, the target lesions as (organ, location, diameter), whether the
    subject has a non-target lesion)."""
    day = max(subject.consent_date, start - timedelta(days=ctx.rng.randint(3, 20)))
    lesions = [("liver", LIVER_SITES[index % 4], ctx.rng.randint(25, 80))]
    if index % 2:
        lesions.append(("liver", LIVER_SITES[(index + 1) % 4], ctx.rng.randint(12, 40)))
    if index % 3 == 0:
        lesions.append(("lymph_node", "Portocaval node", ctx.rng.randint(15, 28)))
    if index % 5 == 1:
        lesions.append(("lung", "Right lower lobe", ctx.rng.randint(10, 22)))
    return day, lesions, index % 3 == 1


NON_TARGET = {"organ": "portal_vein", "location": "Right portal vein branch"}


def _baseline(ctx, subject, coordinator, start, index):
    day, lesions, with_non_target = _baseline_plan(ctx, subject, start, index)
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
    if with_non_target:
        non_targets.append(
            services.add_non_target_lesion(
                subject, user=coordinator, **NON_TARGET, baseline_date=day, method="CT"
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


# --- the bulk path -------------------------------------------------------------------------------


def _seed_bulk(ctx):
    """The first ``BULK_COURSES`` randomized subjects: baseline lesions, then an assessment every
    ``INTERVAL`` days to the progression, the death or withdrawal, or today; each record written
    once in its final state, in bulk, with the responses the services derive (and the demo's
    one investigator response that differs)."""
    subjects = [s for s in ctx.subjects if "arm" in ctx.plan.get(s.pk, {})][:BULK_COURSES]
    randomized = randomization_dates([s.pk for s in subjects])
    courses = {"assessments": 0, "PD": 0, "responders": 0}
    disagreement = False
    lesions, assessments, children = [], [], []
    for index, subject in enumerate(subjects):
        start = randomized.get(subject.pk)
        if start is None:
            continue
        targets, non_targets = _bulk_baseline(ctx, subject, start, index)
        lesions += [*targets, *non_targets]
        end = subject.status_date if subject.status in ("died", "withdrawn") else ctx.today
        days = [start + timedelta(days=INTERVAL * k) for k in range(1, 40)]
        days = [d for d in days if d <= min(end or ctx.today, ctx.today)]
        plan = _course(ctx, ctx.plan[subject.pk]["arm"], index, len(days))
        history: list = []
        for k, day in enumerate(days):
            derived, response, disagreement = _follow_up(
                plan[k], day, targets, non_targets, history, disagreement, k
            )
            assessment = _bulk_assessment(subject, k + 1, day, index, plan[k][1], response)
            if day <= targets[0].baseline_date:
                raise DomainError(f"Demo assessment of {subject} before its baseline scan.")
            services._set_derived(assessment, derived)
            check_rules(assessment)
            assessments.append(assessment)
            children += _bulk_children(assessment, targets, non_targets, history[-1])
            courses["assessments"] += 1
            if derived.overall == recist.Response.PD:
                courses["PD"] += 1
                break

    def coordinator(record):
        subject = record.assessment.subject if hasattr(record, "assessment") else record.subject
        return ctx.site_user(Role.SITE_STAFF, subject.site)

    for model in (TargetLesion, NonTargetLesion, TumorAssessment):
        of_model = [r for r in lesions + assessments if type(r) is model]
        bulk_insert(model, of_model, user_of=coordinator)
    for model in (TargetMeasurement, NonTargetAssessment):
        bulk_insert(model, [r for r in children if type(r) is model], user_of=coordinator)
    best = selectors.best_responses([s.pk for s in subjects])
    courses["responders"] = sum(
        1 for b in best.values() if b.response in (recist.Response.CR, recist.Response.PR)
    )
    _report(ctx, courses, len(subjects))


def _bulk_baseline(ctx, subject, start, index) -> tuple[list, list]:
    """The subject's baseline lesions, numbered, checked as ``services.add_target_lesion`` and
    ``add_non_target_lesion`` check them."""
    day, planned, with_non_target = _baseline_plan(ctx, subject, start, index)
    targets = [
        TargetLesion(
            subject=subject,
            number=number,
            organ=organ,
            location=location,
            diameter=diameter,
            baseline_date=day,
            method="CT",
        )
        for number, (organ, location, diameter) in enumerate(planned, start=1)
    ]
    per_organ = Counter(t.organ for t in targets)
    if len(targets) > MAX_TARGETS or max(per_organ.values()) > MAX_TARGETS_PER_ORGAN:
        raise DomainError(f"Demo target lesions of {subject}: more than RECIST 1.1 allows.")
    non_targets = []
    if with_non_target:
        non_targets.append(
            NonTargetLesion(subject=subject, number=1, **NON_TARGET, baseline_date=day, method="CT")
        )
    for lesion in [*targets, *non_targets]:
        check_rules(lesion)
    return targets, non_targets


def _bulk_assessment(subject, number, day, index, new_lesion, response) -> TumorAssessment:
    return TumorAssessment(
        subject=subject,
        number=number,
        assessment_date=day,
        method=_method(index),
        new_lesions=new_lesion,
        new_lesions_description=NEW_LESION if new_lesion else "",
        investigator_response=response,
    )


def _bulk_children(assessment, targets, non_targets, point) -> list:
    rows = [
        TargetMeasurement(assessment=assessment, lesion=t, diameter=point.targets[t.number])
        for t in targets
    ] + [
        NonTargetAssessment(assessment=assessment, lesion=n, status=point.non_targets[n.number])
        for n in non_targets
    ]
    for row in rows:
        check_rules(row)
    return rows
