"""Celery tasks of the edit checks. They retry with backoff when the database is unavailable."""

from __future__ import annotations

from celery import shared_task
from django.core.cache import cache
from django.db import DatabaseError

from .sweep import run_edit_checks

RETRY = {
    "autoretry_for": (DatabaseError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
    "max_retries": 8,
}
# Nobody reads these tasks' results (the worker logs them). Keeping none also keeps a save from
# waiting on the result store when Redis is down: Celery subscribes to a task's result before it
# publishes the task, and that subscription keeps retrying where the broker fails at once.
OPTIONS = {"ignore_result": True, **RETRY}


def pending_key(subject_id: int) -> str:
    """The cache marker of a queued check of this subject (``scheduling`` debounces with it)."""
    return f"edc:edit-checks-pending:{subject_id}"


@shared_task(name="queries.check_subject", **OPTIONS)
def check_subject(subject_id: int) -> dict:
    """One subject's edit checks (queued after a change of its data)."""
    cache.delete(pending_key(subject_id))
    result = run_edit_checks(subject_ids=[subject_id])
    return vars(result)


@shared_task(name="queries.sweep_study", **OPTIONS)
def sweep_study() -> dict:
    """Every edit check over the whole study (the beat schedule's nightly sweep)."""
    return vars(run_edit_checks())
