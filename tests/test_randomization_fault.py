"""Randomization under fault (issue 12): a server process killed with SIGKILL while it holds the
stratum lock (its allocation made, not yet committed) leaves the list consistent: the slot it took
is free again and goes to the next subject (no slot lost, none used twice), the request queued
behind it proceeds, and the killed request's subject can be randomized afterwards."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from core.roles import Role
from randomization import services
from randomization.models import Allocation
from subjects.models import Subject, SubjectStatus

from .builders import ensure_active_list, make_eligible_subject, make_site, make_user

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# A server process: randomizes a subject inside a transaction it keeps open (holding the subject
# and stratum locks), says so on stdout, and waits to be killed.
HOLDER = """
import os, sys, time
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from randomization import services
from subjects.models import Subject

subject = Subject.objects.get(pk=int(sys.argv[1]))
user = get_user_model().objects.get(pk=int(sys.argv[2]))
with transaction.atomic():
    allocation = services.randomize(subject, user)
    print(connection.connection.info.backend_pid, allocation.randomization_number, flush=True)
    time.sleep(300)
"""


def start_holder(subject, user) -> tuple[subprocess.Popen, int, str]:
    db = connection.settings_dict
    url = "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**db)
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(subject.pk), str(user.pk)],
        cwd=Path(settings.BASE_DIR),
        env={**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "edc.settings"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready, _, _ = select.select([process.stdout], [], [], 120)
    if not ready:
        process.kill()
        pytest.fail("the holder process did not randomize within 120 s")
    line = process.stdout.readline().split()
    if len(line) != 2:
        process.kill()
        pytest.fail(f"the holder process failed: {process.stderr.read()}")
    return process, int(line[0]), line[1]


def backend_state(pid: int) -> tuple[str, str] | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT state, wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()


def wait_until(condition, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_kill_9_while_holding_the_stratum_lock_loses_no_slot_and_uses_none_twice():
    ensure_active_list()
    site = make_site("K9")
    staff = make_user(Role.SITE_STAFF, site)
    killed_subject = make_eligible_subject(site, by=staff)
    waiting_subject = make_eligible_subject(site, by=staff)

    holder, holder_backend, held_number = start_holder(killed_subject, staff)
    try:
        assert held_number == "R2-0001"
        assert backend_state(holder_backend)[0] == "idle in transaction"  # the lock is held

        outcome = {}

        def waiter():
            try:
                connection.ensure_connection()
                outcome["pid"] = connection.connection.info.backend_pid
                subject = Subject.objects.get(pk=waiting_subject.pk)
                outcome["allocation"] = services.randomize(subject, staff)
            except Exception as exc:  # checked below
                outcome["allocation"] = exc
            finally:
                connection.close()

        thread = threading.Thread(target=waiter)
        thread.start()
        # The waiting request is queued behind the holder's lock, not finished.
        assert wait_until(lambda: "pid" in outcome and backend_state(outcome["pid"])[1] == "Lock")
        assert "allocation" not in outcome

        os.kill(holder.pid, signal.SIGKILL)
        assert holder.wait(timeout=30) == -signal.SIGKILL
        thread.join(timeout=60)
        assert not thread.is_alive(), "the waiting request never got the lock"
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
        holder.stderr.close()

    # The database ended the killed process's transaction: its backend is gone, nothing of its
    # allocation stays, and the slot it had taken went to the request that waited.
    assert wait_until(lambda: backend_state(holder_backend) is None)
    allocated = outcome["allocation"]
    assert isinstance(allocated, Allocation), repr(allocated)
    assert allocated.randomization_number == "R2-0001"
    assert Subject.objects.get(pk=killed_subject.pk).status == SubjectStatus.SCREENING

    # The next allocation proceeds: the killed request's subject takes the next slot.
    again = services.randomize(Subject.objects.get(pk=killed_subject.pk), staff)
    assert again.randomization_number == "R2-0002"

    allocations = Allocation.objects.select_related("slot").order_by("slot__sequence")
    assert [(a.subject_id, a.slot.sequence) for a in allocations] == [
        (waiting_subject.pk, 1),
        (killed_subject.pk, 2),
    ]
    assert all(a.arm == a.slot.arm for a in allocations)
    assert Allocation.history.count() == 2  # the killed transaction left no history either
    randomized = Subject.history.filter(status=SubjectStatus.RANDOMIZED)
    assert sorted(randomized.values_list("id", flat=True)) == sorted(
        [waiting_subject.pk, killed_subject.pk]
    )
