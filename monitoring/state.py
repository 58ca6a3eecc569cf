"""What a write would touch, and the lock state of it: read in one query.

A write ``Target`` is a record of a subject (a model with ``subject_lookup``): the record itself,
the records it belongs to along its ``subject_lookup`` (an AE's causality row belongs to the AE,
a prior therapy row to the eligibility assessment: locking the AE locks its rows), its subject's
casebook and the study. Data queries and their messages target the record they are about.

``lock_state_of(obj)`` is this app's ``lock_state`` hook for ``core.access``: the pages of a
frozen or locked record show it read-only, with the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.db import connection, models

from core.errors import DomainError

from .models import (
    CasebookSignature,
    CasebookState,
    LockLevel,
    RecordState,
    SourceDataVerification,
    StudyLock,
)

# Records of a subject that are not its source data: the queries about it, the eligibility
# signature (a statement about the data, not data) and this app's own records. A change to them
# neither clears a verification nor voids the casebook signature.
QUERY_MODELS = frozenset({"queries.dataquery", "queries.querymessage"})
NOT_SOURCE_DATA = QUERY_MODELS | {"eligibility.eligibilitysignature"}

STUDY_LOCKED = "The study is locked for analysis: no change is possible."


class DataLocked(DomainError):
    """A write to frozen or locked data was refused; the message says which and why."""


Ref = tuple[int, int]  # (content type id, object id) of a record


@dataclass
class Target:
    """What one write touches."""

    instance: models.Model
    subject_id: int | None
    refs: list[Ref] = field(default_factory=list)  # the record (if saved) and its parents
    is_query: bool = False  # a data query or its message: allowed on frozen data
    is_source_data: bool = True


def _ref(obj: models.Model) -> Ref:
    return (ContentType.objects.get_for_model(type(obj)).pk, obj.pk)


def target_of(instance: models.Model) -> Target | None:
    """The record, parents and subject a write of ``instance`` touches; None when no lock
    applies to it (records of no subject, and this app's own records)."""
    model = type(instance)
    label = model._meta.label_lower
    lookup = getattr(model, "subject_lookup", None)
    if lookup is None or model._meta.app_label == "monitoring":
        return None
    if label in QUERY_MODELS:
        query = instance if label == "queries.dataquery" else instance.query
        return Target(
            instance,
            query.subject_id,
            [(query.content_type_id, query.object_id)],
            is_query=True,
            is_source_data=False,
        )
    refs = [_ref(instance)] if instance.pk is not None else []
    if lookup == "pk":
        return Target(instance, instance.pk, refs)
    *path, last = lookup.split("__")
    value = instance
    for part in path:
        value = getattr(value, part)
        refs.append(_ref(value))
    return Target(
        instance, getattr(value, f"{last}_id"), refs, is_source_data=label not in NOT_SOURCE_DATA
    )


@dataclass
class Found:
    """The lock rows, verifications and signatures that concern a set of targets."""

    study_locked: bool = False
    casebooks: dict[int, tuple[str, str]] = field(default_factory=dict)  # subject: (state, id)
    records: dict[Ref, tuple[str, str]] = field(default_factory=dict)  # ref: (state, label)
    verified: set[Ref] = field(default_factory=set)
    signed: set[int] = field(default_factory=set)  # subjects with an active casebook signature


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def read(targets: list[Target], *, with_marks: bool = True) -> Found:
    """Everything that concerns ``targets``, in one query (a UNION of the small tables)."""
    refs = sorted({ref for t in targets for ref in t.refs})
    subject_ids = sorted({t.subject_id for t in targets if t.subject_id is not None})
    parts = [f"SELECT 'study', 0, 0, 'locked', '' FROM {_table(StudyLock)} WHERE locked"]
    params: list = []
    subject_table = _table(CasebookState._meta.get_field("subject").related_model)
    if subject_ids:
        marks = ", ".join(["%s"] * len(subject_ids))
        parts.append(
            f"SELECT 'casebook', c.subject_id, 0, c.state, s.subject_identifier "
            f"FROM {_table(CasebookState)} c JOIN {subject_table} s ON s.id = c.subject_id "
            f"WHERE c.subject_id IN ({marks}) AND c.state <> 'open'"
        )
        params += subject_ids
        if with_marks:
            parts.append(
                f"SELECT 'signed', subject_id, 0, '', '' FROM {_table(CasebookSignature)} "
                f"WHERE subject_id IN ({marks}) AND NOT void"
            )
            params += subject_ids
    if refs:
        pairs = " OR ".join(["(content_type_id = %s AND object_id = %s)"] * len(refs))
        flat = [value for ref in refs for value in ref]
        parts.append(
            f"SELECT 'record', content_type_id, object_id, state, record_label "
            f"FROM {_table(RecordState)} WHERE ({pairs}) AND state <> 'open'"
        )
        params += flat
        if with_marks:
            parts.append(
                f"SELECT 'sdv', content_type_id, object_id, '', '' "
                f"FROM {_table(SourceDataVerification)} WHERE ({pairs}) AND verified"
            )
            params += flat
    found = Found()
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for kind, a, b, state, text in cursor.fetchall():
            if kind == "study":
                found.study_locked = True
            elif kind == "casebook":
                found.casebooks[a] = (state, text)
            elif kind == "record":
                found.records[(a, b)] = (state, text)
            elif kind == "sdv":
                found.verified.add((a, b))
            else:
                found.signed.add(a)
    return found


def anything_marked() -> bool:
    """Is anything of the study frozen, locked, verified or signed? (One query: when nothing is,
    no write is refused and none clears a mark, however many records it writes.)"""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {_table(StudyLock)} WHERE locked) "
            f"OR EXISTS (SELECT 1 FROM {_table(CasebookState)} WHERE state <> 'open') "
            f"OR EXISTS (SELECT 1 FROM {_table(RecordState)} WHERE state <> 'open') "
            f"OR EXISTS (SELECT 1 FROM {_table(SourceDataVerification)} WHERE verified) "
            f"OR EXISTS (SELECT 1 FROM {_table(CasebookSignature)} WHERE NOT void)"
        )
        return cursor.fetchone()[0]


def frozen_sentence(what: str) -> str:
    return (
        f"{what} is frozen: its data can no longer be changed; data queries may still be "
        "raised and answered."
    )


def locked_sentence(what: str) -> str:
    return f"{what} is locked: no change is possible."


def state_of(target: Target, found: Found) -> tuple[str, str] | None:
    """(level, sentence) of the strongest lock on ``target``, or None: locked wins over frozen,
    the study over the casebook over the record."""
    if found.study_locked:
        return LockLevel.LOCKED, STUDY_LOCKED
    levels = []
    casebook = found.casebooks.get(target.subject_id)
    if casebook:
        levels.append((casebook[0], f"Subject {casebook[1]}"))
    for ref in target.refs:
        if ref in found.records:
            state, label = found.records[ref]
            levels.append((state, label))
    for wanted, sentence in (
        (LockLevel.LOCKED, locked_sentence),
        (LockLevel.FROZEN, frozen_sentence),
    ):
        for state, what in levels:
            if state == wanted:
                return wanted, sentence(what)
    return None


def lock_state_of(obj: models.Model) -> tuple[str, str] | None:
    """``core.access``'s ``lock_state`` hook: (level, sentence) of the lock on ``obj`` (a site: the
    study lock only; a subject: its casebook and the study; a record: also the record's own)."""
    target = target_of(obj)
    if target is None:
        found = read([], with_marks=False)
        return (LockLevel.LOCKED, STUDY_LOCKED) if found.study_locked else None
    return state_of(target, read([target], with_marks=False))


@dataclass(frozen=True)
class LockedData:
    """What no write may touch: the study, or these subjects' casebooks and these records."""

    study: bool
    subject_ids: frozenset[int]
    records: frozenset[Ref]

    def covers(self, subject_id: int, ref: Ref) -> bool:
        return self.study or subject_id in self.subject_ids or ref in self.records


def locked_data() -> LockedData:
    """This app's ``locked_data`` hook: the edit-check sweep skips what is locked (and counts
    it). One small query (a UNION): the locked casebooks and records are few."""
    study, subject_ids, records = False, set(), set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 'study', 0, 0 FROM {_table(StudyLock)} WHERE locked"
            f" UNION ALL SELECT 'casebook', subject_id, 0 FROM {_table(CasebookState)}"
            " WHERE state = %s"
            " UNION ALL SELECT 'record', content_type_id, object_id FROM"
            f" {_table(RecordState)} WHERE state = %s",
            [LockLevel.LOCKED, LockLevel.LOCKED],
        )
        for kind, a, b in cursor.fetchall():
            if kind == "study":
                study = True
            elif kind == "casebook":
                subject_ids.add(a)
            else:
                records.add((a, b))
    return LockedData(study=study, subject_ids=frozenset(subject_ids), records=frozenset(records))
