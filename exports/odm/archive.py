"""The archival file's ClinicalData: every history row is a transaction with its AuditRecord."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter

from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from lxml import etree

from core import access
from core.export_spec import ExportForm, Item

from .. import records
from .audited import Audited, _signatures, signed_in
from .layout import _by_subject, _lookup
from .oids import event_of, form_oid, group_oid, item_oid, signature_oid, user_oid
from .scope import Scope, Signed
from .values import _datetime, _repeat_key, _text, odm_value

# --- writing elements ----------------------------------------------------------------------------


def _item_data(parent, oid: str, value) -> None:
    text = odm_value(value)
    if text is not None:
        etree.SubElement(parent, "ItemData", ItemOID=oid, Value=text)


def _signature(parent, signed: Signed, signature, location: str, usernames: dict) -> None:
    element = etree.SubElement(parent, "Signature")
    etree.SubElement(element, "UserRef", UserOID=user_oid(usernames.get(signature.signer_id)))
    etree.SubElement(element, "LocationRef", LocationOID=location)
    etree.SubElement(
        element, "SignatureRef", SignatureOID=signature_oid(signed.form, signature.kind)
    )
    etree.SubElement(element, "DateTimeStamp").text = _datetime(signature.signed_at)


def _audit_record(parent, row, audited: Audited, location: str, usernames: dict) -> None:
    element = etree.SubElement(parent, "AuditRecord")
    etree.SubElement(element, "UserRef", UserOID=user_oid(usernames.get(row.history_user_id)))
    etree.SubElement(element, "LocationRef", LocationOID=location)
    etree.SubElement(element, "DateTimeStamp").text = _datetime(row.history_date)
    if row.history_change_reason:
        etree.SubElement(element, "ReasonForChange").text = _text(row.history_change_reason)
    etree.SubElement(element, "SourceID").text = f"{audited.label}:{row.history_id}"


# --- archival ------------------------------------------------------------------------------------


@dataclass
class _Archived:
    """How the items of one audited model are read from its history rows."""

    item: Item
    oid: str
    read: Callable[[object], object]
    on_instance: bool  # a property of the record: read from the record rebuilt from the row


@dataclass
class _Plan:
    audited: Audited
    items: list[_Archived]
    related: list[str]
    attnames: list[str] = field(default_factory=list)
    lookups: list[str] | None = None  # all items are stored values: rows read as values

    @property
    def needs_instance(self) -> bool:
        return any(entry.on_instance for entry in self.items)


HISTORY_HEAD = (
    "odm_subject_id",
    "history_id",
    "history_date",
    "history_type",
    "history_user_id",
    "history_change_reason",
    "id",
)


def _history_rows(rows: Iterable[tuple], child: bool) -> Iterator[_HistoryRow]:
    for row in rows:
        yield _HistoryRow(row, child)


class _HistoryRow:
    """A history row read as values (the fast path): its head, and its items' values."""

    __slots__ = (*HISTORY_HEAD, "odm_parent_key", "values")

    def __init__(self, row: tuple, child: bool):
        for name, value in zip(HISTORY_HEAD, row, strict=False):
            setattr(self, name, value)
        start = len(HISTORY_HEAD) + child
        self.odm_parent_key = row[start - 1] if child else None
        self.values = row[start:]


def _related_path(history_model, source: str) -> str | None:
    """The select_related path of ``a.b.c`` (``a__b``), or None if it is not a chain of
    relations of the history row."""
    parts = source.split(".")[:-1]
    model = history_model
    for part in parts:
        try:
            relation = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not relation.is_relation:
            return None
        model = relation.related_model
    return "__".join(parts)


def _plan(audited: Audited, identifiers: bool) -> _Plan:
    history_model = audited.model.history.model
    model = audited.model
    plan = _Plan(audited, [], [], [f.attname for f in model._meta.concrete_fields])
    for item in audited.items(identifiers):
        oid = item_oid(audited.form, item, audited.group)
        source = item.source
        if not isinstance(source, str):
            continue  # a function or expression of the record now: in the snapshot only
        first = source.split(".")[0]
        if first == "pk":
            plan.items.append(_Archived(item, oid, attrgetter(model._meta.pk.attname), False))
            continue
        try:
            history_model._meta.get_field(first)
        except FieldDoesNotExist:
            plan.items.append(_Archived(item, oid, item.value, True))  # a property
            continue
        path = _related_path(history_model, source)
        if path is None:
            continue
        if path:
            plan.related.append(path)
        plan.items.append(_Archived(item, oid, item.value, False))
    if not plan.needs_instance and audited.form.subject_path != "pk":
        lookups = [
            "id" if e.item.source == "pk" else _lookup(history_model, e.item.source)
            for e in plan.items
        ]
        plan.lookups = None if None in lookups else lookups
    return plan


def _instance(row, plan: _Plan):
    model = plan.audited.model
    values = {name: getattr(row, name) for name in plan.attnames if hasattr(row, name)}
    return model(**values)


def _values(row, plan: _Plan) -> list:
    instance = _instance(row, plan) if plan.needs_instance else None
    values = []
    for entry in plan.items:
        try:
            values.append(entry.read(instance if entry.on_instance else row))
        except (AttributeError, ObjectDoesNotExist, TypeError, ValueError):
            values.append(None)
    return values


@dataclass
class _SubjectState:
    key: str
    location: str
    events: set = field(default_factory=set)
    exists: bool = False


TRANSACTION = {"+": "Insert", "~": "Update", "-": "Remove"}


class Archive:
    def __init__(
        self,
        scope: Scope,
        locations: dict[int, str],
        usernames: dict[int, str],
        audited: list[Audited],
    ):
        self.scope = scope
        self.locations = locations
        self.usernames = usernames
        self.audited = audited
        self.signed = signed_in(audited)
        self.plans = [_plan(entry, scope.identifiers) for entry in audited]
        self.subject_rank = next(
            a.rank for a in audited if a.form.subject_path == "pk" and not a.group
        )
        self.subjects = 0
        self.audit_records = 0

    def _streams(self) -> list[Iterable]:
        streams = []
        for plan in self.plans:
            history = plan.audited.history(self.scope)
            history = history.order_by("odm_subject_id", "history_date", "history_id")
            if plan.lookups is not None:
                child = plan.audited.group is not None
                head = (*HISTORY_HEAD, "odm_parent_key") if child else HISTORY_HEAD
                rows = records.stream(history.values_list(*head, *plan.lookups))
                streams.append(_history_rows(rows, child))
                continue
            if plan.related:
                history = history.select_related(*plan.related)
            streams.append(records.stream(history))
        for signed in self.signed:
            signatures = _signatures(signed, self.scope).order_by(
                "odm_subject_id", "signed_at", "pk"
            )
            streams.append(records.stream(signatures))
        return streams

    def subject_data(self) -> Iterator[etree._Element]:
        for subject_id, entries in _by_subject(self._streams()):
            state = self._state(subject_id, entries)
            if state is None:
                continue
            self.subjects += 1
            yield from self._transactions(state, entries)

    def _state(self, subject_id: int, entries) -> _SubjectState | None:
        rows = [obj for index, obj in entries if index == self.subject_rank]
        if not rows:  # no history of the subject itself: its rows cannot be placed
            return None
        subject = rows[-1]
        site_id = getattr(
            subject, f"{access.site_lookup_of(self.audited[self.subject_rank].model)}_id"
        )
        location = self.locations.get(site_id)
        return _SubjectState(subject.subject_identifier, location) if location else None

    def _transactions(self, state: _SubjectState, entries) -> Iterator[etree._Element]:
        def moment(entry):
            index, obj = entry
            if index >= len(self.plans):
                return (obj.signed_at, index, obj.pk)
            return (obj.history_date, index, obj.history_id)

        previous: dict[tuple[int, int], list] = {}
        for index, obj in sorted(entries, key=moment):
            if index >= len(self.plans):
                yield self._signed(state, self.signed[index - len(self.plans)], obj)
                continue
            plan = self.plans[index]
            values = obj.values if isinstance(obj, _HistoryRow) else _values(obj, plan)
            before = previous.get((index, obj.id))
            previous[(index, obj.id)] = values
            self.audit_records += 1
            yield self._transaction(state, plan, obj, values, before)

    def _subject_data(self, state: _SubjectState, kind: str) -> etree._Element:
        element = etree.Element("SubjectData", SubjectKey=state.key, TransactionType=kind)
        return element

    def _event(self, state: _SubjectState, parent, form: ExportForm):
        event = event_of(form)
        kind = "Update" if event.oid in state.events else "Insert"
        state.events.add(event.oid)
        return etree.SubElement(
            parent, "StudyEventData", StudyEventOID=event.oid, TransactionType=kind
        )

    def _signed(self, state: _SubjectState, signed: Signed, signature) -> etree._Element:
        element = self._subject_data(state, "Update")
        etree.SubElement(element, "SiteRef", LocationOID=state.location)
        event = self._event(state, element, signed.form)
        form_data = etree.SubElement(
            event, "FormData", FormOID=form_oid(signed.form), TransactionType="Update"
        )
        _signature(form_data, signed, signature, state.location, self.usernames)
        return element

    def _transaction(self, state, plan: _Plan, row, values, before) -> etree._Element:
        audited = plan.audited
        kind = TRANSACTION[row.history_type]
        is_subject = audited.rank == self.subject_rank
        if is_subject and kind == "Remove":
            element = self._subject_data(state, "Remove")
            _audit_record(element, row, audited, state.location, self.usernames)
            etree.SubElement(element, "SiteRef", LocationOID=state.location)
            state.events.clear()
            return element
        subject_kind = kind if is_subject and kind == "Insert" else "Update"
        element = self._subject_data(state, subject_kind)
        etree.SubElement(element, "SiteRef", LocationOID=state.location)
        event = self._event(state, element, audited.form)
        form_kind = kind if audited.group is None else "Update"
        form_data = etree.SubElement(
            event, "FormData", self._form_attrs(audited, row, values, form_kind)
        )
        if audited.group is None and kind == "Remove":
            _audit_record(form_data, row, audited, state.location, self.usernames)
            return element
        attrs = {"ItemGroupOID": group_oid(audited.form, audited.group)}
        if audited.group is not None:
            attrs["ItemGroupRepeatKey"] = self._child_key(plan, row, values)
        attrs["TransactionType"] = kind
        group_data = etree.SubElement(form_data, "ItemGroupData", attrs)
        _audit_record(group_data, row, audited, state.location, self.usernames)
        if kind != "Remove":
            self._items(group_data, plan, values, before if kind == "Update" else None)
        return element

    def _form_attrs(self, audited: Audited, row, values, kind: str) -> dict:
        attrs = {"FormOID": form_oid(audited.form)}
        if audited.form.repeating:
            if audited.group is None:
                key = next(
                    (
                        v
                        for e, v in zip(self.plans[audited.rank].items, values, strict=True)
                        if e.item.name == audited.form.domain_key
                    ),
                    None,
                )
                attrs["FormRepeatKey"] = _repeat_key(key, row.id)
            else:
                attrs["FormRepeatKey"] = _repeat_key(row.odm_parent_key, row.odm_parent_key)
        attrs["TransactionType"] = kind
        return attrs

    @staticmethod
    def _child_key(plan: _Plan, row, values) -> str:
        key = next(
            (
                v
                for e, v in zip(plan.items, values, strict=True)
                if e.item.name == plan.audited.group.key
            ),
            None,
        )
        return _repeat_key(key, row.id)

    @staticmethod
    def _items(parent, plan: _Plan, values: list, before: list | None) -> None:
        for position, (entry, value) in enumerate(zip(plan.items, values, strict=True)):
            if before is None:
                _item_data(parent, entry.oid, value)
            elif before[position] != value:
                text = odm_value(value)
                if text is None:
                    etree.SubElement(parent, "ItemData", ItemOID=entry.oid, IsNull="Yes")
                else:
                    etree.SubElement(parent, "ItemData", ItemOID=entry.oid, Value=text)
