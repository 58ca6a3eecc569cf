"""Monitoring records for tests that need every exported form to have rows."""

from __future__ import annotations

from core.roles import Role
from monitoring import services
from monitoring.models import LockLevel, StudyLock
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .subjects import PASSWORD, make_user, site_today


def add_monitoring_records(
    subject: Subject, *, by, data_manager, monitor=None, investigator=None
) -> Subject:
    """Every kind of monitoring record on ``subject``: its record verified by a monitor, its
    record and casebook frozen then reopened (the rows stay, open), and, at the end of its
    participation (screen failed, or withdrawn once randomized), its casebook signed. Nothing
    stays frozen or locked: the test may go on changing the subject."""
    monitor = monitor or make_user(Role.MONITOR, subject.site)
    investigator = investigator or make_user(Role.INVESTIGATOR, subject.site)
    final = (
        SubjectStatus.SCREEN_FAILED
        if subject.status == SubjectStatus.SCREENING
        else SubjectStatus.WITHDRAWN
    )
    subject_services.change_status(
        subject, final, user=by, reason="End of participation", on_date=site_today(subject.site)
    )
    subject = Subject.objects.get(pk=subject.pk)
    services.sign_casebook(subject, user=investigator, password=PASSWORD)
    services.verify_record(subject, user=monitor)
    for level, reason in ((LockLevel.FROZEN, ""), (LockLevel.OPEN, "Frozen for a test")):
        services.set_record_state(subject, level, user=data_manager, reason=reason)
        services.set_casebook_state(subject, level, user=data_manager, reason=reason)
    return subject


def lock_and_unlock_study(*, data_manager) -> StudyLock:
    """The study locked for analysis and unlocked again: the study lock's row, open. Only while
    nothing stands in the way (no unresolved query, every casebook signed): before any subject,
    say."""
    services.lock_study(user=data_manager, reason="Database lock rehearsal")
    return services.unlock_study(user=data_manager, reason="Rehearsal over")
