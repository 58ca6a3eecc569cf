"""At most one unresolved system query per (check, record, field), whatever runs at once: two
sweeps started together (real threads, each with its own PostgreSQL connection) never duplicate a
query nor close one twice, and the partial unique index holds on its own when the sweeps are not
serialized by the advisory lock."""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from django.utils import timezone

from accounts.system import system_user
from core.audit import audited_save
from core.registry import subject_changes_unannounced
from queries import sweep
from queries.models import DataQuery, DataQueryQuerySet, MessageKind, QueryMessage, QueryStatus
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .builders import days_ago, make_subject
from .builders.threads import run_at_once as builders_run_at_once

SUBJECTS = 12


def run_at_once(*calls):
    """The calls started together (``tests.builders.threads``); none may have failed."""
    results = builders_run_at_once(calls)
    assert not [r for r in results if isinstance(r, Exception)], results
    return results


def screening_too_long(site, coordinator, count=SUBJECTS) -> list[Subject]:
    """Subjects consented 40 days ago and still in screening: each violates SUBJ-005 once."""
    with subject_changes_unannounced():  # no query yet: the sweeps under test open them
        return [make_subject(site, by=coordinator, consent_date=days_ago(40)) for _ in range(count)]


def duplicates():
    """(check, record, field) with more than one unresolved system query."""
    return list(
        DataQuery.objects.system()
        .unresolved()
        .values("check_code", "content_type", "object_id", "field")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
    )


def opened_and_kept(results):
    return sorted((r.opened, r.kept) for r in results)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_open_each_query_once_and_close_each_once(site, coordinator):
    subjects = screening_too_long(site, coordinator)

    results = run_at_once(sweep.run_edit_checks, sweep.run_edit_checks)

    # One sweep opened them; the other, after it, found them open and kept them.
    assert opened_and_kept(results) == [(0, SUBJECTS), (SUBJECTS, 0)]
    assert duplicates() == []
    assert DataQuery.objects.filter(check_code="SUBJ-005", status=QueryStatus.OPEN).count() == (
        SUBJECTS
    )

    # Half the subjects are screen failures now: two sweeps at once close each of their queries
    # once (one "closed" message by the system, not two).
    with subject_changes_unannounced():
        for subject in subjects[: SUBJECTS // 2]:
            subject_services.change_status(
                subject,
                SubjectStatus.SCREEN_FAILED,
                user=coordinator,
                reason="Screen failure",
                on_date=days_ago(0),
            )

    results = run_at_once(sweep.run_edit_checks, sweep.run_edit_checks)

    assert sorted(r.closed for r in results) == [0, SUBJECTS // 2]
    assert sorted(r.kept for r in results) == [SUBJECTS // 2, SUBJECTS // 2]
    closed = DataQuery.objects.filter(status=QueryStatus.CLOSED)
    assert closed.count() == SUBJECTS // 2
    closing = Counter(
        QueryMessage.objects.filter(kind=MessageKind.CLOSED).values_list("query_id", flat=True)
    )
    assert closing == dict.fromkeys(closed.values_list("pk", flat=True), 1)
    assert duplicates() == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_without_the_lock_the_unique_index_alone_stops_the_second_sweep(
    site, coordinator, monkeypatch
):
    screening_too_long(site, coordinator)
    system_user()  # the account exists, as after any first sweep (its lazy creation needs the lock)
    # No advisory lock: the sweeps run side by side. Each has found the violations and seen no
    # query before either writes (a barrier at the first insert), so both try to open every
    # query: only the partial unique index can refuse the second.
    monkeypatch.setattr(sweep, "lock_sweeps", lambda subject_ids=None: None)
    at_the_insert = threading.Barrier(2, timeout=30)
    waited = threading.local()
    arrived, refused = [], []
    insert = DataQueryQuerySet.bulk_create_with_history

    def insert_together(self, objs, *args, **kwargs):
        if not getattr(waited, "done", False):  # the first insert of each sweep
            waited.done = True
            arrived.append(len(objs))
            at_the_insert.wait()
        try:
            return insert(self, objs, *args, **kwargs)
        except IntegrityError:
            refused.append(len(objs))
            raise

    monkeypatch.setattr(DataQueryQuerySet, "bulk_create_with_history", insert_together)

    results = run_at_once(sweep.run_edit_checks, sweep.run_edit_checks)

    assert arrived == [SUBJECTS, SUBJECTS]  # both sweeps tried to open every query
    # The loser's insert waited for the winner's commit and the index refused it; its one-by-one
    # fallback, refused again for each query, counted them all as kept.
    assert refused
    assert opened_and_kept(results) == [(0, SUBJECTS), (SUBJECTS, 0)]
    assert duplicates() == []
    assert DataQuery.objects.count() == SUBJECTS
    assert QueryMessage.objects.filter(kind=MessageKind.RAISED).count() == SUBJECTS


@pytest.mark.django_db
def test_the_database_refuses_a_second_unresolved_system_query_on_the_same_field(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(40))
    system = system_user()

    def query(status=QueryStatus.OPEN, check_code="SUBJ-005", field="status", by=system):
        return DataQuery(
            subject=subject,
            site=site,
            content_type=ContentType.objects.get_for_model(Subject),
            object_id=subject.pk,
            field=field,
            record_label=subject.subject_identifier,
            check_code=check_code,
            raised_by=by,
            message="Still in screening 40 days after consent.",
            status=status,
            opened_at=timezone.now(),
        )

    def save(q):
        with transaction.atomic():  # the refused insert leaves the test's transaction usable
            return audited_save(q, user=q.raised_by, reason="", validate_only=())

    save(query())
    for second in (query(), query(QueryStatus.ANSWERED), query(QueryStatus.REOPENED)):
        with pytest.raises(IntegrityError):
            save(second)

    # Not refused: a closed or cancelled one, a manual one (even twice), another field or check.
    save(query(QueryStatus.CLOSED))
    save(query(QueryStatus.CANCELLED))
    save(query(check_code="", by=coordinator))
    save(query(check_code="", by=coordinator))
    save(query(field="consent_date"))
    save(query(check_code="SUBJ-006"))
    assert DataQuery.objects.count() == 7


def _in_thread(call):
    """``call`` started in a thread of its own (its own connection); (thread, result box)."""
    box: dict = {}

    def run():
        try:
            box["result"] = call()
        except Exception as exc:  # checked by the test
            box["result"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, box


def _waiting_for_an_advisory_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


def _until(condition, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_checks_of_different_subjects_never_wait_for_each_other_a_sweep_waits_for_both(
    site, coordinator
):
    first, second = screening_too_long(site, coordinator, count=2)
    system_user()
    held, release = threading.Event(), threading.Event()

    def first_subjects_run_in_progress():
        with transaction.atomic():
            sweep.lock_sweeps([first.pk])
            held.set()
            release.wait(30)

    holder, _ = _in_thread(first_subjects_run_in_progress)
    try:
        assert held.wait(30)
        # The other subject's checks run to the end while the first subject's run is open.
        other, box = _in_thread(lambda: sweep.run_edit_checks(subject_ids=[second.pk]))
        other.join(30)
        assert not other.is_alive() and box["result"].opened == 1
        # The same subject's checks, and a sweep of the whole study, wait for it.
        same, same_box = _in_thread(lambda: sweep.run_edit_checks(subject_ids=[first.pk]))
        _until(lambda: _waiting_for_an_advisory_lock() == 1)
        study, study_box = _in_thread(sweep.run_edit_checks)
        _until(lambda: _waiting_for_an_advisory_lock() == 2)
        assert same.is_alive() and study.is_alive()
    finally:
        release.set()
        holder.join(30)
    same.join(30)
    study.join(30)
    assert same_box["result"].opened + study_box["result"].opened == 1
    assert duplicates() == []
    assert DataQuery.objects.filter(check_code="SUBJ-005", status=QueryStatus.OPEN).count() == 2
