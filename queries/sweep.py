"""Running the edit checks: open the queries of new violations, keep those still violated, close
those whose violation is gone. Idempotent: a second run changes nothing.

One transaction per run, serialized on PostgreSQL by advisory locks (``lock_sweeps``) against every
run that touches the same subjects' queries; the partial unique index on unresolved system
queries is the guarantee behind it. Locked data are left alone (counted in
``skipped_locked``), and a query closed as confirmed correct is not raised again while the
offending values stay the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.system import system_user
from core import registry
from core.audit import audited_save

from .checks import EditCheck, Scope, Violation, checks_named
from .models import (
    UNRESOLVED,
    DataQuery,
    MessageKind,
    QueryMessage,
    QueryStatus,
    Resolution,
)

LOCK_KEY = 0x0EDC_C4EC  # the study's advisory key: a sweep holds it alone, subjects' runs share it
SUBJECT_LOCK_SPACE = 0x0EDC_C4ED  # the first int4 of a subject's key (pg_advisory_xact_lock(a, b))
RAISED_REASON = "Raised by edit check"
RESOLVED_TEXT = "Resolved by data change: the edit check no longer finds the problem."
VALUES_CHANGED_REASON = "Edit check: the offending values changed"

Key = tuple[str, int, int, str]  # (check code, content type id, object id, field)


@dataclass
class SweepResult:
    opened: int = 0
    kept: int = 0
    closed: int = 0
    suppressed: int = 0  # confirmed correct (or cancelled) with the same values: not raised
    skipped_locked: int = 0  # violations and queries on locked data: left alone

    def __str__(self) -> str:
        return (
            f"{self.opened} opened, {self.kept} kept, {self.closed} closed "
            f"({self.suppressed} confirmed correct, not raised again"
            + (f"; {self.skipped_locked} on locked data, skipped" if self.skipped_locked else "")
            + ")"
        )


def _locked_data():
    """What is locked (``covers(subject_id, (content type id, object id))``), or None."""
    for hook in registry.locked_data():
        return hook()
    return None


def lock_sweeps(subject_ids: Iterable[int] | None = None) -> None:
    """Serialize, for the rest of the transaction, the runs that may touch the same queries.

    A run over some subjects reads and writes only those subjects' queries: it takes the study
    key shared and each subject's key alone (in id order, so two runs never deadlock), so saves
    of different subjects never wait for each other. A whole-study run (``subject_ids`` None)
    takes the study key alone: it waits for the subjects' runs in progress and they for it.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        if subject_ids is None:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_KEY])
            return
        keys = sorted({_int4(subject_id) for subject_id in subject_ids})
        if len(keys) == 1:  # the task after a save: one statement
            cursor.execute(
                "SELECT pg_advisory_xact_lock_shared(%s), pg_advisory_xact_lock(%s, %s)",
                [LOCK_KEY, SUBJECT_LOCK_SPACE, keys[0]],
            )
            return
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [LOCK_KEY])
        cursor.execute(  # in the array's order, ascending
            "SELECT count(pg_advisory_xact_lock(%s, key)) FROM unnest(%s::int[]) AS key",
            [SUBJECT_LOCK_SPACE, keys],
        )


def _int4(subject_id: int) -> int:
    """A subject's id as the second int4 of its key (ids beyond 2^31 share keys: safe, only
    coarser)."""
    return (subject_id + 2**31) % 2**32 - 2**31


def _key(violation: Violation, code: str) -> Key:
    content_type = ContentType.objects.get_for_model(violation.model)
    return (code, content_type.pk, violation.object_id, violation.field)


def _query_key(query: DataQuery) -> Key:
    return (query.check_code, query.content_type_id, query.object_id, query.field)


def find_violations(
    checks: Iterable[EditCheck], scope: Scope, progress: Callable[[EditCheck], None] | None = None
) -> dict[Key, tuple[EditCheck, Violation]]:
    found = {}
    for check in checks:
        for violation in check.find(scope):
            found[_key(violation, check.code)] = (check, violation)
        if progress:
            progress(check)
    return found


def _in_scope(queryset, codes: list[str], scope: Scope):
    queryset = queryset.filter(check_code__in=codes)
    if scope.subject_ids is not None:
        queryset = queryset.filter(subject_id__in=list(scope.subject_ids))
    return queryset


def _system_queries(code_list: list[str], scope: Scope) -> tuple[dict, set]:
    """The scope's unresolved system queries by key, and the (key, value key) of those closed as
    confirmed correct or cancelled: read in one query."""
    unresolved, suppressed = {}, set()
    wanted = (
        Q(status__in=UNRESOLVED)
        | Q(resolution=Resolution.CONFIRMED_CORRECT)
        | Q(status=QueryStatus.CANCELLED)
    )
    for query in _in_scope(DataQuery.objects.filter(wanted), code_list, scope):
        key = _query_key(query)
        if query.status in UNRESOLVED:
            unresolved[key] = query
        elif (
            query.resolution == Resolution.CONFIRMED_CORRECT
            or query.status == QueryStatus.CANCELLED
        ):
            suppressed.add((*key, query.value_key))
    return unresolved, suppressed


def run_edit_checks(
    *,
    subject_ids: Iterable[int] | None = None,
    codes: Iterable[str] | None = None,
    now: datetime | None = None,
    progress: Callable[[EditCheck], None] | None = None,
) -> SweepResult:
    """Run the checks (all, or ``codes``) over the study (or ``subject_ids``) and bring the
    system queries in line with what they find."""
    checks = checks_named(codes)
    scope = Scope(
        subject_ids=None if subject_ids is None else set(subject_ids), now=now or timezone.now()
    )
    code_list = [check.code for check in checks]
    with transaction.atomic():
        lock_sweeps(scope.subject_ids)
        violations = find_violations(checks, scope, progress)
        unresolved, suppressed = _system_queries(code_list, scope)
        result = SweepResult()
        locked = _locked_data()
        if locked is not None:
            skipped = {
                key
                for key, (_, violation) in violations.items()
                if locked.covers(violation.subject_id, key[1:3])
            } | {
                key
                for key, query in unresolved.items()
                if locked.covers(query.subject_id, key[1:3])
            }
            for key in skipped:
                violations.pop(key, None)
                unresolved.pop(key, None)
            result.skipped_locked = len(skipped)
        new = []
        # In the order of their keys (check, record, field), not the rows' order in the checks'
        # SQL: a sweep numbers the queries it opens the same way on every run and database.
        for key, (check, violation) in sorted(violations.items(), key=lambda item: item[0]):
            query = unresolved.get(key)
            if query is not None:
                result.kept += 1
                if query.value_key != violation.value_key:
                    _update_values(query, violation)
            elif (*key, violation.value_key) in suppressed:
                result.suppressed += 1
            else:
                new.append((check, violation))
        opened = _open(new, scope.now)
        result.opened = opened
        result.kept += len(new) - opened
        for key, query in unresolved.items():
            if key not in violations:
                close_as_resolved(query, at=scope.now)
                result.closed += 1
    return result


def _new_query(check: EditCheck, violation: Violation, at: datetime, system) -> DataQuery:
    return DataQuery(
        subject_id=violation.subject_id,
        site_id=violation.site_id,
        content_type=ContentType.objects.get_for_model(violation.model),
        object_id=violation.object_id,
        field=violation.field,
        record_label=violation.record_label[:200],
        check_code=check.code,
        severity=check.severity,
        raised_by=system,
        message=violation.message,
        value_snapshot=violation.snapshot,
        value_key=violation.value_key,
        status=QueryStatus.OPEN,
        opened_at=at,
    )


def _open(new: list[tuple[EditCheck, Violation]], at: datetime) -> int:
    """Open the queries of new violations, in bulk (with their history and first message)."""
    if not new:
        return 0
    system = system_user()
    queries = [_new_query(check, violation, at, system) for check, violation in new]
    try:
        with transaction.atomic():
            created = DataQuery.objects.bulk_create_with_history(
                queries, user=system, reason=RAISED_REASON
            )
    except IntegrityError:  # another run opened some of them: open the rest one by one
        created = []
        for query in queries:
            try:
                with transaction.atomic():
                    created += DataQuery.objects.bulk_create_with_history(
                        [query], user=system, reason=RAISED_REASON
                    )
            except IntegrityError:
                continue
    QueryMessage.objects.bulk_create_with_history(
        [
            QueryMessage(
                query=query, kind=MessageKind.RAISED, author=system, at=at, text=query.message
            )
            for query in created
        ],
        user=system,
        reason=RAISED_REASON,
    )
    return len(created)


def _update_values(query: DataQuery, violation: Violation) -> None:
    query.value_snapshot = violation.snapshot
    query.value_key = violation.value_key
    query.message = violation.message
    audited_save(
        query,
        user=system_user(),
        reason=VALUES_CHANGED_REASON,
        validate_only=("value_snapshot", "value_key", "message"),
    )


def close_as_resolved(query: DataQuery, *, at: datetime | None = None) -> DataQuery:
    """The violation is gone: the system closes the query (never a person)."""
    at = at or timezone.now()
    system = system_user()
    query.status = QueryStatus.CLOSED
    query.resolution = Resolution.RESOLVED_BY_DATA_CHANGE
    query.closed_at = at
    audited_save(query, user=system, reason=RESOLVED_TEXT, validate_only=("status", "resolution"))
    audited_save(
        QueryMessage(
            query=query, kind=MessageKind.CLOSED, author=system, at=at, text=RESOLVED_TEXT
        ),
        user=system,
        reason=RESOLVED_TEXT,
    )
    return query
