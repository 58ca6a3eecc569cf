"""Reading a form's item values: rows of values where the items are field paths, else records."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.core.exceptions import FieldDoesNotExist
from django.db.models import QuerySet

from core.export_spec import ChildGroup, ExportForm

from .. import records
from .values import _group

# --- reading the records -------------------------------------------------------------------------
#
# Model instances cost most of an export's time (instances, prefetches, related managers). An item
# whose source is a path of model fields ("subject.site.code") reads the same value with
# ``values_list`` ("subject__site__code"); a form whose wanted items (and child groups) are all
# such paths is read without instances, its child rows one query per batch of records. Any other
# form is read through ``exports.records`` (``row``, ``child_rows``). Both give the same values.

SUBJECT = "__subject_identifier__"  # the subject identifier of a record, beside its items
BATCH = 2000  # rows per fetch from the database


def field_path(model, source) -> str | None:
    """The ``values()`` lookup of an item's source when every step is a model field (a forward
    relation, then a concrete field), else None."""
    if not isinstance(source, str):
        return None
    if source == "pk":
        return "pk"
    parts = source.split(".")
    for number, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        last = number == len(parts) - 1
        if field.is_relation:
            if last or not (field.many_to_one or field.one_to_one):
                return None
            model = field.related_model
        elif not last or not getattr(field, "concrete", False):
            return None
    return "__".join(parts)


def subject_source(form: ExportForm) -> str | None:
    """The record's subject identifier as an attribute path ("subject.subject_identifier")."""
    if not form.subject_path:
        return None
    if form.subject_path == "pk":
        return "subject_identifier"
    return form.subject_path.replace("__", ".") + ".subject_identifier"


def subject_identifier_of(form: ExportForm, record) -> str | None:
    value = record
    for part in (subject_source(form) or "").split("."):
        value = getattr(value, part, None) if value is not None and part else None
    return value


class _ChildRows:
    """A child group's rows in the order of their records, taken record by record."""

    def __init__(self, rows: Iterator[tuple], names: list[str]):
        self.rows, self.names = rows, names
        self.pending = next(self.rows, None)

    def take(self, parent_pk) -> list[dict]:
        found = []
        while self.pending is not None and self.pending[0] == parent_pk:
            found.append(dict(zip(self.names, self.pending[1:], strict=True)))
            self.pending = next(self.rows, None)
        return found


class Reader:
    """The values of the items ``names`` of ``form`` (and SUBJECT) for each record of a
    queryset, with the rows of its child groups ``children``: ``(values, {group: [row]})``."""

    def __init__(self, form: ExportForm, names: Sequence[str], children: Sequence[str] = ()):
        self.form, self.names = form, tuple(names)
        self.groups: tuple[ChildGroup, ...] = tuple(_group(form, n) for n in children)
        items = {item.name: item for item in form.items}
        self.items = tuple(items[name] for name in self.names)
        model = form.model_class()
        subject = subject_source(form)
        self.keys = (*((SUBJECT,) if subject else ()), *self.names)
        self.paths = [field_path(model, subject)] if subject else []
        self.paths += [field_path(model, item.source) for item in self.items]
        self.child_paths = {g.name: self._child_paths(g) for g in self.groups}
        self.fast = all(self.paths) and all(p is not None for p in self.child_paths.values())

    @staticmethod
    def _child_paths(group: ChildGroup) -> list[str] | None:
        model = group.model_class()
        if model is None or not group.parent_field or not group.related:
            return None
        paths = [field_path(model, item.source) for item in group.items]
        return paths if all(paths) else None

    def __call__(self, queryset: QuerySet) -> Iterator[tuple[dict, dict[str, list[dict]]]]:
        return self._values(queryset) if self.fast else self._instances(queryset)

    def _values(self, queryset):
        # a total order, shared by the records and, through the foreign key, their child rows:
        # each child stream is read alongside the records (a merge), never held in memory
        ordering = [*(queryset.query.order_by or self.form.model_class()._meta.ordering), "pk"]
        if not all(isinstance(term, str) for term in ordering):
            yield from self._instances(queryset)
            return
        parents = queryset.prefetch_related(None).order_by(*ordering)
        children = {g.name: self._child_rows(g, parents, ordering) for g in self.groups}
        for row in parents.values_list("pk", *self.paths).iterator(chunk_size=BATCH):
            values = dict(zip(self.keys, row[1:], strict=True))
            yield values, {name: rows.take(row[0]) for name, rows in children.items()}

    def _child_rows(self, group: ChildGroup, parents: QuerySet, ordering: list[str]):
        model, key = group.model_class(), group.parent_field
        in_parent_order = []
        for term in ordering:
            name = term.lstrip("-")
            path = f"{key}_id" if name == "pk" else f"{key}__{name}"
            in_parent_order.append(("-" if term.startswith("-") else "") + path)
        # then the related manager's order within one record (the model's, less the record)
        own = [o for o in model._meta.ordering or () if o.lstrip("-") not in (key, f"{key}_id")]
        rows = (
            model._default_manager.filter(**{f"{key}__in": parents.order_by().values("pk")})
            .order_by(*in_parent_order, *own, "pk")
            .values_list(f"{key}_id", *self.child_paths[group.name])
        )
        return _ChildRows(rows.iterator(chunk_size=BATCH), [item.name for item in group.items])

    def _instances(self, queryset):
        for record in records.stream(queryset):
            values = {item.name: item.value(record) for item in self.items}
            if SUBJECT in self.keys:
                values[SUBJECT] = subject_identifier_of(self.form, record)
            yield values, {g.name: records.child_rows(g, record) for g in self.groups}
