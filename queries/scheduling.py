"""When a subject's data change, its edit checks run as a Celery task after the commit.

A burst of saves is checked once: the task waits ``debounce_seconds`` and a cache marker stops a
second one being queued meanwhile. The marker must expire by itself when the task is due (the
cache may be each process's own memory), so every save is checked. If the broker is unreachable
the save still stands: the failure is logged and the next sweep finds what this run would have.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

from core.edit_checks import edit_check_settings

from .tasks import check_subject, pending_key

log = logging.getLogger(__name__)


def subject_changed(subject_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        check_subject.apply(args=(subject_id,), throw=True)  # no broker: in-process, at once
        return
    delay = edit_check_settings()["debounce_seconds"]
    if not cache.add(pending_key(subject_id), 1, timeout=delay):
        return  # a task for this subject is already queued: it will see this change too
    try:
        check_subject.apply_async(args=(subject_id,), countdown=delay, retry=False)
    except Exception:  # the broker is down: the save stands; the next sweep catches up
        cache.delete(pending_key(subject_id))
        log.warning(
            "Edit checks of subject %s not queued (broker unreachable); the next sweep will "
            "run them.",
            subject_id,
            exc_info=True,
        )
