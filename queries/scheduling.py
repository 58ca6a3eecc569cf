"""When a subject's data change, its edit checks run after the commit.

With a broker they run as a Celery task. A burst of saves is checked once: the task waits
``debounce_seconds`` and a cache marker stops a second one being queued meanwhile. The marker must
expire by itself when the task is due (the cache may be each process's own memory), so every save
is checked. If the broker is unreachable the save still stands: the failure is logged and the next
sweep finds what this run would have.

Without a broker (``CELERY_TASK_ALWAYS_EAGER``) they run in the process that saved:
``EDIT_CHECKS_WITHOUT_BROKER = "background"`` hands the subject to one thread of the process,
which waits ``debounce_seconds`` too, then checks every subject handed over meanwhile in one run
(a run over many subjects costs little more than a run over one: each check is one query), so a
request never waits for the checks and a busy process checks set-wise; ``"inline"`` runs them in
the request at the commit.
A background run that fails is logged; so are checks still pending when the process exits after
waiting ``EXIT_WAIT`` seconds for them: the next sweep catches up, as when the broker is down.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection

from core.edit_checks import edit_check_settings

from .sweep import run_edit_checks
from .tasks import check_subject, pending_key

log = logging.getLogger(__name__)

EXIT_WAIT = 10  # seconds an exiting process waits for its pending background checks


def subject_changed(subject_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: in this process
        if settings.EDIT_CHECKS_WITHOUT_BROKER == "inline":
            check_subject.apply(args=(subject_id,), throw=True)
        else:
            background.submit(subject_id)
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


class BackgroundChecks:
    """The subjects handed over since the last run, and the thread that checks them."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)  # a forked child has no thread yet

    def _reset(self) -> None:
        self._changed = threading.Condition()
        self._pending: set[int] = set()
        self._since = 0.0  # when the oldest pending subject was handed over (monotonic)
        self._hurry = 0  # how many wait: no debounce for what is pending while anyone does
        self._running = False
        self._thread: threading.Thread | None = None

    def submit(self, subject_id: int) -> None:
        with self._changed:
            if not self._pending:
                self._since = time.monotonic()
            self._pending.add(subject_id)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="edc-edit-checks", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Check every subject handed over now (no debounce) and wait until it is done; False
        on timeout."""
        with self._changed:
            self._hurry += 1
            self._changed.notify_all()
            try:
                return self._changed.wait_for(
                    lambda: not self._pending and not self._running, timeout
                )
            finally:
                self._hurry -= 1

    def _work(self) -> None:
        while True:
            with self._changed:
                self._running = False
                self._changed.notify_all()
                while not self._pending:
                    self._changed.wait()
                due = self._since + edit_check_settings()["debounce_seconds"]
                while not self._hurry and (left := due - time.monotonic()) > 0:
                    self._changed.wait(left)
                subject_ids, self._pending = sorted(self._pending), set()
                self._running = True
            try:
                run_edit_checks(subject_ids=subject_ids)
            except Exception:  # logged; the next sweep finds what this run would have
                log.exception(
                    "Edit checks of %d subject(s) failed (the next sweep will run them): %s",
                    len(subject_ids),
                    subject_ids[:20],
                )
            finally:
                with self._changed:
                    idle = not self._pending
                if idle:
                    connection.close()  # this thread's own connection: not kept while idle

    def _at_exit(self) -> None:
        if self._thread is not None and not self.wait(EXIT_WAIT):
            log.warning(
                "Edit checks of %d subject(s) not run before exit; the next sweep will run them.",
                len(self._pending),
            )


background = BackgroundChecks()
atexit.register(background._at_exit)
