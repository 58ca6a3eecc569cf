"""How a snapshot reads a form: its item groups as written, and what the database reads of it."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from core.export_spec import ChildGroup, ExportForm, Item, is_expression

from .audited import _subject_expression
from .metadata import _key_item
from .oids import Event, event_of, form_oid, group_oid, item_oid
from .scope import _visible

# --- snapshot ------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One item group of a form as written: its items (the visible ones), their OIDs, its key."""

    oid: str
    items: tuple[Item, ...]
    oids: tuple[str, ...]
    key: int | None  # position of the key item (domain key, child key) among the items
    group: ChildGroup | None = None

    @cached_property
    def readers(self) -> tuple[Callable[[object], object], ...]:
        return tuple(item.reader for item in self.items)


def _group_layout(form: ExportForm, group: ChildGroup | None, identifiers: bool) -> _Group:
    items = _visible(group.items if group else form.items, identifiers)
    key_name = _key_item(form, group)
    key = next((n for n, item in enumerate(items) if key_name and item.name == key_name), None)
    oids = tuple(item_oid(form, item, group) for item in items)
    return _Group(group_oid(form, group), items, oids, key, group)


@dataclass
class _Layout:
    form: ExportForm
    oid: str
    event: Event
    main: _Group
    children: list[_Group]
    values_path: _ValuesPath = field(init=False)

    @classmethod
    def of(cls, form: ExportForm, identifiers: bool) -> _Layout:
        main = _group_layout(form, None, identifiers)
        children = [_group_layout(form, group, identifiers) for group in form.children]
        layout = cls(form, form_oid(form), event_of(form), main, children)
        layout.values_path = _ValuesPath.of(layout)
        return layout


def _lookup(model: type[models.Model], source) -> str | None:
    """The ORM lookup of an item's source when it is a path of relations ending on a stored
    value (``term.meddra_code`` -> ``term__meddra_code``) or a database expression (itself),
    else None (a function, a property, or a path ending on a relation)."""
    if is_expression(source):
        return source
    if not isinstance(source, str):
        return None
    if source == "pk":
        return "pk"
    *path, last = source.split(".")
    for part in path:
        try:
            relation = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not relation.is_relation or relation.many_to_many or relation.one_to_many:
            return None
        model = relation.related_model
    try:
        stored = model._meta.get_field(last)
    except FieldDoesNotExist:
        return None
    return None if stored.is_relation or not stored.concrete else source.replace(".", "__")


_INTEGER_TYPES = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField"}


def _stored_field(model: type[models.Model], lookup) -> models.Field:
    if not isinstance(lookup, str):  # a database expression
        return lookup.output_field
    if lookup == "pk":
        return model._meta.pk
    *path, last = lookup.split("__")
    for part in path:
        model = model._meta.get_field(part).related_model
    return model._meta.get_field(last)


def _sql_writes(model: type[models.Model], lookup) -> bool:
    """Does the SQL write the value's ODM text exactly as ``odm_value`` does? (Else Python
    computes it: a float, a datetime without time zones...)"""
    kind = _stored_field(model, lookup).get_internal_type()
    return (
        kind in _INTEGER_TYPES
        or kind in _TEXT_TYPES
        or kind in ("BooleanField", "DecimalField", "DateField")
        or (kind == "DateTimeField" and settings.USE_TZ)
    )


def _read_by_database(model: type[models.Model], source):
    lookup = _lookup(model, source)
    return lookup if lookup is not None and _sql_writes(model, lookup) else None


@dataclass
class _ValuesPath:
    """How the database reads a form's items: each item's lookup or database expression, None
    for an item Python computes (a function, a property, a type the SQL cannot write); a child
    group's rows computed by Python (``rows(record)``, or an item computed) have no model."""

    lookups: list  # ORM lookups, or database expressions; None: computed
    children: list[tuple[type[models.Model] | None, str, list]]  # model, parent field, lookups

    @property
    def computed(self) -> bool:
        return None in self.lookups or any(model is None for model, _, _ in self.children)

    @classmethod
    def of(cls, layout: _Layout) -> _ValuesPath:
        form = layout.form
        lookups = [_read_by_database(form.model_class(), item.source) for item in layout.main.items]
        children: list[tuple[type[models.Model] | None, str, list]] = []
        for child in layout.children:
            model = child.group.model_class()
            found = [_read_by_database(model, i.source) for i in child.items] if model else [None]
            if model is None or not child.group.parent_field or None in found:
                children.append((None, "", [None] * len(child.items)))
            else:
                children.append((model, child.group.parent_field, found))
        return cls(lookups, children)


def _ordered(queryset: models.QuerySet, form: ExportForm) -> models.QuerySet:
    subject = _subject_expression(form, history=False)
    queryset = queryset.annotate(odm_subject_id=subject).filter(odm_subject_id__isnull=False)
    return queryset.order_by("odm_subject_id", *form.ordering)


def _value_parents(layout: _Layout, queryset: models.QuerySet) -> models.QuerySet:
    """The scoped records of a values-path form, with their subject, ordered by subject then id."""
    subject = _subject_expression(layout.form, history=False)
    parents = queryset.prefetch_related(None).select_related(None)
    parents = parents.annotate(odm_subject_id=subject).filter(odm_subject_id__isnull=False)
    return parents.order_by("odm_subject_id", "pk")


def _tagged(stream: Iterable, index: int) -> Iterator[tuple[int, int, object]]:
    for obj in stream:
        yield obj.odm_subject_id, index, obj


def _by_subject(streams: list[Iterable]) -> Iterator[tuple[int, list]]:
    """Merge streams each ordered by ``odm_subject_id``: (subject id, [(stream index, obj)])."""
    tagged = [_tagged(stream, index) for index, stream in enumerate(streams)]
    merged = heapq.merge(*tagged, key=lambda entry: entry[0])
    for subject_id, group in itertools.groupby(merged, key=lambda entry: entry[0]):
        yield subject_id, [(index, obj) for _, index, obj in group]
