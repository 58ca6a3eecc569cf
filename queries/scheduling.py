"""When a subject's data change, its edit checks run as a Celery task after the commit.

``subject_changed(subject_id)`` is this app's ``after_subject_change`` (``core.registry``): the
services' writes call it through ``core.audit`` once per subject per transaction, after the
commit. A burst of saves of one subject is checked once: the task waits ``debounce_seconds`` and
a marker in the cache stops a second task being queued meanwhile. The marker expires when the task
is due, so a save committed after that queues the next task, and every save is checked. It must
expire by itself: the cache may be each process's own memory (the default), which the worker's
clearing of the marker never reaches.

If the broker is unreachable the save has already succeeded: the failure is logged, and the next
sweep (nightly, or ``run_edit_checks``) finds what this run would have found.
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
