"""On PostgreSQL, the database writes the values-path forms' FormData as the text lxml would."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import attrgetter

from django.conf import settings
from django.db import connections, models
from django.db.models import F

from core.sql import literal

from .. import background, records
from .layout import _Group, _Layout, _value_parents
from .values import _ATTRIBUTE_ENTITIES, _NOT_XML_CODES, _xml_attribute

# On PostgreSQL a values-path form (the adverse events and their causality: the bulk of the file)
# is written by the database as the very text lxml writes, in its place in the ``SubjectData``.
# The Python path (``snapshot``) writes the other forms, every form on SQLite, and any type the
# SQL cannot format exactly as ``odm_value``; the tests compare the two byte for byte.

SQL_FRAGMENTS = True  # False: every database takes the Python path (tests compare both)
FRAGMENT_CHUNK = 32  # subjects fetched at a time (each row: all of a subject's records)
_NOT_XML_SQL = "E'" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF'"
_TO_ESCAPE_SQL = (
    "E'[&<>\"\\n\\r\\t" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF]'"
)
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


@dataclass(frozen=True)
class _Fragment:
    """The ``FormData`` of a subject's records as XML text, written by the database."""

    odm_subject_id: int
    pk: int  # the first record's
    text: str


def _sql_escaped(column: str) -> str:
    """SQL of a text column as ``_text`` then libxml2's attribute escaping write it."""
    expression = f"translate({column}, {_NOT_XML_SQL}, '')"
    for char, entity in _ATTRIBUTE_ENTITIES:
        source = {"\n": "E'\\n'", "\r": "E'\\r'", "\t": "E'\\t'"}.get(char, literal(char))
        expression = f"replace({expression}, {source}, {literal(entity)})"
    return expression


def _stored_field(model: type[models.Model], lookup: str) -> models.Field:
    if lookup == "pk":
        return model._meta.pk
    *path, last = lookup.split("__")
    for part in path:
        model = model._meta.get_field(part).related_model
    return model._meta.get_field(last)


def _sql_value(column: str, model_field: models.Field) -> str | None:
    """SQL of ``odm_value`` of a column: the value's ODM text (escaped), NULL when there is no
    value; None when the SQL cannot write the type exactly as Python does."""
    kind = model_field.get_internal_type()
    if kind == "BooleanField":
        return f"(CASE {column} WHEN true THEN '1' WHEN false THEN '0' END)"
    if kind in _INTEGER_TYPES or kind == "DecimalField":
        return f"({column})::text"
    if kind == "DateField":
        return f"to_char({column}, 'YYYY-MM-DD')"
    if kind == "DateTimeField" and settings.USE_TZ:
        text = f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return f"replace({text}, '.000000Z', 'Z')"  # isoformat: no fraction when it is 0
    if kind in _TEXT_TYPES:
        return _sql_escaped(f"nullif({column}, '')")
    return None


def _sql_group(start: str, items: str) -> str:
    """SQL of an ``ItemGroupData`` from the SQL of its start tag (no end) and of its items."""
    # ``items`` once: a CTE's column is the expression itself when the planner inlines it.
    return f"coalesce({start} || '>' || nullif({items}, '') || '</ItemGroupData>', {start} || '/>')"


def _sql_items(group: _Group, model, lookups: list[str]) -> str | None:
    """SQL of a row's ``ItemData`` elements from its columns ``c0``, ``c1``... ('' if none).
    Text is escaped only in the rare row where a text value has a character to escape (or to
    drop): one pattern test per row instead of eight functions per value."""
    fields = [_stored_field(model, lookup) for lookup in lookups]
    texts = [f"c{n}" for n, f in enumerate(fields) if f.get_internal_type() in _TEXT_TYPES]
    plain, escaped = [], []
    for number, (oid, model_field) in enumerate(zip(group.oids, fields, strict=True)):
        value = _sql_value(f"c{number}", model_field)
        if value is None:
            return None
        start = literal(f'<ItemData ItemOID="{_xml_attribute(oid)}" Value="')
        escaped.append(f"coalesce({start} || {value} || '\"/>', '')")
        if f"c{number}" in texts:
            value = f"nullif(c{number}, '')"
        plain.append(f"coalesce({start} || {value} || '\"/>', '')")
    if not plain:
        return "''"
    if not texts:
        return " || ".join(plain)
    return (
        f"(CASE WHEN concat({', '.join(texts)}) ~ {_TO_ESCAPE_SQL} THEN {' || '.join(escaped)} "
        f"ELSE {' || '.join(plain)} END)"
    )


def _sql_key(group: _Group, model, lookups: list[str]) -> str:
    """SQL of ``_repeat_key`` of a row: its key item's text, or its id. A text key is escaped
    only in the rare row that has a character to escape (the escaping functions on every row
    were a large share of the query's time)."""
    if group.key is None:
        return "(pk)::text"
    column = f"c{group.key}"
    model_field = _stored_field(model, lookups[group.key])
    value = _sql_value(column, model_field)
    if model_field.get_internal_type() in _TEXT_TYPES:
        value = (
            f"(CASE WHEN {column} ~ {_TO_ESCAPE_SQL} THEN {value} ELSE nullif({column}, '') END)"
        )
    return f"coalesce(nullif({value}, ''), (pk)::text)"


def _sql_columns(count: int) -> str:
    return ", ".join(f"c{n}" for n in range(count))


def _fragment_query(
    layout: _Layout, queryset: models.QuerySet, part: tuple[int, int] | None = None
) -> tuple[str, tuple] | None:
    """The SQL writing the scoped records' ``FormData`` (subject id, first id, the text of its
    records in id order), one row per subject in subject order; None when a type keeps the form
    on the Python path.

    The records are sorted on their values (``OFFSET 0``: before the text is made, not the
    wide text); each record's child rows are read by its id (``LATERAL``: the index on the
    foreign key, in the records' order), as the Python path reads every child of an exported
    record. ``part`` (k, n): only the subjects whose id is k modulo n (one of n queries that
    share the work)."""
    path = layout.values_path
    form_model = layout.form.model_class()
    items = _sql_items(layout.main, form_model, path.lookups)
    if items is None:
        return None
    parents = _value_parents(layout, queryset)
    if part is not None:
        parents = parents.alias(odm_part=F("odm_subject_id") % part[1]).filter(odm_part=part[0])
    parent_sql, params = parents.values_list(
        "odm_subject_id", "pk", *path.lookups
    ).query.sql_with_params()
    params = list(params)
    head = literal(f'<FormData FormOID="{_xml_attribute(layout.oid)}"')
    if layout.form.repeating:
        head += f" || ' FormRepeatKey=\"' || {_sql_key(layout.main, form_model, path.lookups)}"
        head += " || '\"'"
    main_start = literal(f'<ItemGroupData ItemGroupOID="{_xml_attribute(layout.main.oid)}"')
    texts = [f"{head} || '>'", _sql_group(main_start, items)]
    joins = []
    for number, (group, (model, parent_field, lookups)) in enumerate(
        zip(layout.children, path.children, strict=True)
    ):
        child_items = _sql_items(group, model, lookups)
        if child_items is None:
            return None
        child_sql, child_params = (
            model._default_manager.values_list(parent_field, "pk", *lookups)
            .order_by()
            .query.sql_with_params()
        )
        params += child_params
        start = literal(
            f'<ItemGroupData ItemGroupOID="{_xml_attribute(group.oid)}" ItemGroupRepeatKey="'
        )
        start += f" || {_sql_key(group, model, lookups)} || '\"'"
        joins.append(
            f"LEFT JOIN LATERAL (SELECT string_agg({_sql_group(start, child_items)}, '' "
            f"ORDER BY pk) AS xml FROM ({child_sql}) AS g(parent, pk, "
            f"{_sql_columns(len(lookups))}) WHERE g.parent = p.pk) AS g{number} ON true"
        )
        texts.append(f"coalesce(g{number}.xml, '')")
    texts.append("'</FormData>'")
    sql = (
        f"SELECT p.odm_subject_id, p.pk, {' || '.join(texts)} "
        f"FROM ({parent_sql} OFFSET 0) AS p(odm_subject_id, pk, {_sql_columns(len(path.lookups))}) "
        f"{' '.join(joins)} ORDER BY p.odm_subject_id, p.pk"
    )
    # One row per subject, its records' text in order: the stream handles a subject's twenty
    # adverse events as one piece of text, not twenty rows (fetched, merged, joined one by one).
    sql = (
        "SELECT f.odm_subject_id, min(f.pk), string_agg(f.text, '' ORDER BY f.pk) "
        f"FROM ({sql}) AS f(odm_subject_id, pk, text) "
        "GROUP BY f.odm_subject_id ORDER BY f.odm_subject_id"
    )
    return sql, tuple(params)


def _fragments(
    layout: _Layout, queryset: models.QuerySet, threaded: bool = False
) -> Iterator[_Fragment] | None:
    """The records' ``FormData`` written by PostgreSQL, or None (the Python path). ``threaded``
    and outside a transaction: ``background.threads()`` queries share the subjects, each read
    ahead by a thread on its own connection (``exports.background``), merged back in subject
    order."""
    if not SQL_FRAGMENTS or connections[queryset.db].vendor != "postgresql":
        return None
    if layout.form.subject_path == "pk":
        return None
    whole = _fragment_query(layout, queryset)
    if whole is None:
        return None
    if not threaded or not background.usable(queryset.db):
        return _fragment_rows(queryset.db, *whole)
    n = background.threads()
    parts = [
        _as_fragments(
            background.rows_ahead(
                queryset.db, *_fragment_query(layout, queryset, (k, n)), chunk=FRAGMENT_CHUNK
            )
        )
        for k in range(n)
    ]
    return heapq.merge(*parts, key=attrgetter("odm_subject_id"))


def _as_fragments(rows: Iterable[tuple]) -> Iterator[_Fragment]:
    for subject_id, pk, text in rows:
        yield _Fragment(subject_id, pk, text)


def _fragment_rows(alias: str, sql: str, params: tuple) -> Iterator[_Fragment]:
    with (
        records.without_jit(alias),
        connections[alias].chunked_cursor() as cursor,  # server-side: memory stays flat
    ):
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FRAGMENT_CHUNK):
            for subject_id, pk, text in rows:
                yield _Fragment(subject_id, pk, text)
