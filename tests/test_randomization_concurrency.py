"""Exactly-once allocation under real concurrency (PostgreSQL row locks, real threads)."""

import threading
import time

import pytest
from django.db import connection, transaction

from core.roles import Role
from randomization import services
from randomization.models import Allocation, Slot
from subjects.models import Subject, SubjectStatus

from .builders import ensure_active_list, make_eligible_subject, make_site, make_user
from .builders.threads import run_at_once

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def no_lock_timeout(settings):
    """Here requests queue at the stratum lock on purpose (50 at once, on a loaded CI machine),
    for as long as it takes; the "busy" answer of RANDOMIZATION_LOCK_TIMEOUT is tested in
    test_timeouts.py."""
    settings.RANDOMIZATION_LOCK_TIMEOUT = 0


def test_fifty_subjects_of_one_stratum_at_once_get_fifty_consecutive_slots():
    rlist = ensure_active_list(slots_per_stratum=60)
    sites = [make_site(f"C{i}") for i in range(5)]
    staff = {site.pk: make_user(Role.SITE_STAFF, site) for site in sites}
    subjects = [make_eligible_subject(sites[i % 5], by=staff[sites[i % 5].pk]) for i in range(50)]
    results = run_at_once([lambda s=s: services.randomize(s, staff[s.site_id]) for s in subjects])
    errors = [r for r in results if isinstance(r, Exception)]
    assert errors == []
    allocations = Allocation.objects.select_related("slot").order_by("slot__sequence")
    assert allocations.count() == 50
    sequences = [a.slot.sequence for a in allocations]
    assert sequences == list(range(1, 51))  # distinct and consecutive: no gap, no slot twice
    assert {a.stratum.number for a in allocations} == {2}
    assert len({a.subject_id for a in allocations}) == 50
    assert all(a.arm == a.slot.arm for a in allocations)
    # Balanced at every block boundary within the 50 allocated slots.
    slots = list(Slot.objects.filter(rlist=rlist, stratum__number=2).order_by("sequence"))
    arms = {a.slot.sequence: a.arm for a in allocations}
    boundaries = [
        slot.sequence
        for slot, following in zip(slots, [*slots[1:], None], strict=True)
        if following is None or following.block_number != slot.block_number
    ]
    checked = 0
    for boundary in (b for b in boundaries if b <= 50):
        given = [arms[sequence] for sequence in range(1, boundary + 1)]
        assert given.count("A") == given.count("B"), f"unbalanced after slot {boundary}"
        checked += 1
    assert checked >= 8  # 50 slots in blocks of at most 6
    assert Subject.objects.filter(status=SubjectStatus.RANDOMIZED).count() == 50


def test_same_subject_from_ten_threads_is_allocated_exactly_once():
    ensure_active_list()
    site = make_site("T1")
    users = [make_user(Role.SITE_STAFF, site) for _ in range(10)]
    subject = make_eligible_subject(site, by=users[0])
    results = run_at_once(
        [lambda u=u: services.randomize(Subject.objects.get(pk=subject.pk), u) for u in users]
    )
    successes = [r for r in results if isinstance(r, Allocation)]
    failures = [r for r in results if isinstance(r, Exception)]
    assert len(successes) == 1 and len(failures) == 9
    number = successes[0].randomization_number
    for failure in failures:
        assert isinstance(failure, services.AlreadyRandomized), repr(failure)
        assert f"{subject.subject_identifier} is already randomized" in str(failure)
        assert number in str(failure)
    assert Allocation.objects.filter(subject=subject).count() == 1
    assert Allocation.objects.count() == 1
    assert Allocation.history.count() == 1
    statuses = Subject.history.filter(id=subject.pk, status=SubjectStatus.RANDOMIZED)
    assert statuses.count() == 1


def waits_on_a_lock(outcome: dict, pid_key: str, timeout: float = 30) -> bool:
    """Has the backend whose pid the thread put in ``outcome[pid_key]`` been seen waiting on a
    row lock (pg_stat_activity), within ``timeout`` seconds?"""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            pid = outcome.get(pid_key)
            if pid is not None:
                cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
                row = cursor.fetchone()
                if row and row[0] == "Lock":
                    return True
            time.sleep(0.02)
    return False


def test_rolled_back_transaction_leaves_its_slot_free_for_the_waiting_request():
    ensure_active_list()
    site = make_site("T2")
    staff = make_user(Role.SITE_STAFF, site)
    first = make_eligible_subject(site, by=staff)
    second = make_eligible_subject(site, by=staff)
    taken = threading.Event()
    release = threading.Event()
    outcome = {}

    class Abort(Exception):
        pass

    def holder():
        try:
            with transaction.atomic():
                outcome["held"] = services.randomize(first, staff).randomization_number
                taken.set()
                release.wait(timeout=30)
                raise Abort  # fails after taking the slot: everything rolls back
        except Abort:
            outcome["holder"] = "rolled back"
        finally:
            connection.close()

    def waiter():
        try:
            taken.wait(timeout=30)
            connection.ensure_connection()
            outcome["waiter_pid"] = connection.connection.info.backend_pid
            outcome["waiter"] = services.randomize(second, staff).randomization_number
        except Exception as exc:
            outcome["waiter"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for thread in threads:
        thread.start()
    assert taken.wait(timeout=30)
    assert waits_on_a_lock(outcome, "waiter_pid")  # queued behind the held stratum lock
    assert "waiter" not in outcome
    release.set()
    for thread in threads:
        thread.join(timeout=60)
    assert outcome["held"] == "R2-0001" and outcome["holder"] == "rolled back"
    assert outcome["waiter"] == "R2-0001"  # the freed slot, not the next one
    assert list(Allocation.objects.values_list("subject_id", flat=True)) == [second.pk]
    assert Subject.objects.get(pk=first.pk).status == SubjectStatus.SCREENING
