"""Demo monitoring: after the edit checks' first sweep (``seed_follow_up`` of the apps below),
the monitor verifies some records of its sites, the investigator signs one ended subject's
casebook and the data manager locks it, freezes another subject's casebook and one record; all
through ``services``, so the demo has the audit trail users make."""

from __future__ import annotations

from core.roles import Role
from eligibility.models import EligibilityAssessment
from subjects.models import Subject, SubjectStatus

from . import selectors, services
from .models import LockLevel
from .sdv_plan import sdv_models
from .services import FINAL_STATUSES, unresolved_queries

VERIFIED_SUBJECTS = 4  # per monitored site: their records the plan asks for are verified


def _password(ctx, username: str) -> str | None:
    for name, _role, _sites, password in ctx.credentials:
        if name == username:
            return password
    return None


def _verify_some(ctx) -> int:
    monitors = ctx.users.get(Role.MONITOR, [])
    if not monitors:
        return 0
    monitor = monitors[0]
    verified = 0
    for site_id in sorted({m.site_id for m in monitor.site_memberships.all()}):
        subjects = Subject.objects.filter(site_id=site_id).order_by("sequence")[:VERIFIED_SUBJECTS]
        for subject in subjects:
            for model in sdv_models():
                lookup = model.subject_lookup
                records = model.objects.filter(**{"pk" if lookup == "pk" else lookup: subject.pk})
                for record in records:
                    services.verify_record(record, user=monitor)
                    verified += 1
    return verified


def _sign_and_lock_one(ctx) -> Subject | None:
    """The first ended subject without unresolved queries: signed by its investigator and its
    casebook locked by the data manager."""
    data_manager = ctx.users[Role.DATA_MANAGER][0]
    for subject in Subject.objects.filter(status__in=FINAL_STATUSES).select_related("site"):
        if unresolved_queries(subject=subject).exists():
            continue
        investigator = ctx.site_user(Role.INVESTIGATOR, subject.site)
        password = _password(ctx, investigator.username)
        if password is None:
            continue
        services.sign_casebook(subject, user=investigator, password=password)
        services.set_casebook_state(
            subject, LockLevel.LOCKED, user=data_manager, reason="Casebook complete and signed"
        )
        return subject
    return None


def _freeze_some(ctx, locked: Subject | None) -> tuple[Subject | None, object | None]:
    """One randomized subject's casebook frozen, and one eligibility record of another locked
    (or frozen, while a query on it is unresolved)."""
    data_manager = ctx.users[Role.DATA_MANAGER][0]
    randomized = Subject.objects.filter(status=SubjectStatus.RANDOMIZED).order_by("pk")
    if locked is not None:
        randomized = randomized.exclude(pk=locked.pk)
    frozen = randomized.first()
    if frozen is not None:
        services.set_casebook_state(
            frozen, LockLevel.FROZEN, user=data_manager, reason="Monitoring visit: data frozen"
        )
    record = (
        EligibilityAssessment.objects.filter(subject__status=SubjectStatus.RANDOMIZED)
        .exclude(subject_id__in=[s.pk for s in (frozen, locked) if s is not None])
        .order_by("pk")
        .first()
    )
    if record is not None:
        try:  # locked, unless a query on it is still unresolved: then frozen
            services.set_record_state(record, LockLevel.LOCKED, user=data_manager)
        except services.MonitoringRefused:
            services.set_record_state(record, LockLevel.FROZEN, user=data_manager)
    return frozen, record


def seed_follow_up(ctx):
    if ctx.bulk or not ctx.users.get(Role.DATA_MANAGER):
        return  # a bulk study is for benchmarks: no monitoring story
    verified = _verify_some(ctx)
    locked = _sign_and_lock_one(ctx)
    frozen, record = _freeze_some(ctx, locked)
    ctx.write(
        f"Monitoring: {verified} records verified"
        + (f"; casebook of {locked} signed and locked" if locked else "")
        + (f"; casebook of {frozen} frozen" if frozen else "")
        + (f"; {record}: {selectors.record_state(record).state}" if record else "")
    )
