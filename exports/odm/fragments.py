"""The database writes the snapshot's FormData as the text lxml would (PostgreSQL, SQLite)."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from operator import attrgetter, itemgetter

from django.conf import settings
from django.db import connections, models
from django.db.models import F

from core.sql import PostgreSQL, SQLite, dialect_for, literal

from .. import background, records
from .layout import (
    _INTEGER_TYPES,
    _TEXT_TYPES,
    _Group,
    _Layout,
    _ordered,
    _stored_field,
    _value_parents,
)
from .values import _ATTRIBUTE_ENTITIES, _NOT_XML_CODES, _text, _xml_attribute

# Each form's FormData is written by the database as the very text lxml writes, in its place in
# the ``SubjectData``. One generator writes the SQL; ``_PostgreSQL`` and ``_SQLite`` spell the few
# parts the two write differently. What no column holds (a function, a property, the signature)
# Python computes from the records and hands to the SQL as JSON (``_Computed``). The Python path
# (``tests/odm_oracle.py``) is the tests' oracle: they compare the two byte for byte.

FRAGMENT_CHUNK = 32  # subjects fetched at a time (each row: all of a subject's records)
COMPUTED_BATCH = 256  # records of a form with computed values written by one query


@dataclass(frozen=True)
class _Fragment:
    """The ``FormData`` of a subject's records as XML text, written by the database."""

    odm_subject_id: int
    pk: int  # the first record's
    text: str
    subject: object = None  # the subjects' form: the subject (its SubjectData's key and site)


@dataclass(frozen=True)
class _Child:
    """A child group's rows in the SQL: their query (parent id, id, ``c0``...) and the SQL of
    one row's ``ItemGroupData``. ``given``: the rows are Python's (JSON), with no index to read
    a record's by: they are grouped by record once."""

    sql: str
    columns: int
    text: str
    given: bool = False


class _PostgreSQL(PostgreSQL):
    """ODM's own spellings on PostgreSQL: escape strings, ``translate``, a regex test,
    ``to_char``, the child rows joined ``LATERAL`` and a subject's records aggregated by the
    database."""

    _NOT_XML = "E'" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF'"
    _TO_ESCAPE = (
        "E'[&<>\"\\n\\r\\t" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF]'"
    )
    _CONTROL = {"\n": "E'\\n'", "\r": "E'\\r'", "\t": "E'\\t'"}

    def char(self, char: str) -> str:
        return self._CONTROL.get(char) or literal(char)

    def drop_not_xml(self, expression: str) -> str:
        return f"translate({expression}, {self._NOT_XML}, '')"

    def to_escape(self, expressions: list[str]) -> str:
        """True when one of the text values has a character to escape or to drop."""
        joined = expressions[0] if len(expressions) == 1 else f"concat({', '.join(expressions)})"
        return f"{joined} ~ {self._TO_ESCAPE}"

    def prepare(self, connection) -> None:
        pass

    def date(self, expression: str) -> str:
        return f"to_char({expression}, 'YYYY-MM-DD')"

    def json_rows(self, names: list[str], integers: int) -> str:
        """SQL of the rows of a JSON array of arrays (one parameter), as columns ``names``;
        the first ``integers`` are ids."""
        columns = [
            f"(e->>{n})::bigint AS {name}" if n < integers else f"e->>{n} AS {name}"
            for n, name in enumerate(names)
        ]
        return f"SELECT {', '.join(columns)} FROM jsonb_array_elements(%s::jsonb) AS e"

    def query(self, parent_sql: str, columns: int, texts: list[str], children: list[_Child]):
        """One row per subject, its records' text in order: the stream handles a subject's
        twenty adverse events as one piece of text, not twenty rows. The records are sorted on
        their values (``OFFSET 0``: before the text is made, not the wide text); each record's
        child rows are read by its id (``LATERAL``: the index on the foreign key)."""
        joins = []
        texts = list(texts)
        for number, child in enumerate(children):
            rows = f"({child.sql}) AS g(parent, pk, {_sql_columns(child.columns)})"
            text = self.joined(child.text, "''", "pk") + " AS xml"
            joins.append(
                f"LEFT JOIN (SELECT g.parent, {text} FROM {rows} GROUP BY g.parent) AS g{number} "
                f"ON g{number}.parent = p.pk"
                if child.given
                else f"LEFT JOIN LATERAL (SELECT {text} FROM {rows} WHERE g.parent = p.pk) "
                f"AS g{number} ON true"
            )
            texts.insert(-1, f"coalesce(g{number}.xml, '')")
        sql = (
            f"SELECT p.odm_subject_id, p.pk, {' || '.join(texts)} "
            f"FROM ({parent_sql} OFFSET 0) AS p(odm_subject_id, pk, {_sql_columns(columns)}) "
            f"{' '.join(joins)} ORDER BY p.odm_subject_id, p.pk"
        )
        joined = self.joined("f.text", "''", "f.pk")
        return (
            f"SELECT f.odm_subject_id, min(f.pk), {joined} "
            f"FROM ({sql}) AS f(odm_subject_id, pk, text) "
            "GROUP BY f.odm_subject_id ORDER BY f.odm_subject_id"
        )


class _SQLite(SQLite, _PostgreSQL):
    """ODM's own on SQLite (the zero-setup demo database): no escape strings (``char()``), no
    ``translate``, ``REGEXP`` (Django's, Python's ``re``), dates
    stored as ISO text, no column lists on subqueries (CTEs) and no ``LATERAL`` (a correlated
    subquery), group_concat over rows in order; a subject's records are joined by the reader."""

    _TO_ESCAPE = literal('[&<>"\\n\\r\\t\\x01-\\x08\\x0b\\x0c\\x0e-\\x1f\\ufffe\\uffff]')

    def char(self, char: str) -> str:
        return f"char({ord(char)})" if char in "\n\r\t" else literal(char)

    def drop_not_xml(self, expression: str) -> str:
        # A ``replace`` per character overflows SQLite's parser stack: Python's ``_text``, a
        # function of the connection (``prepare``), called only for a value with one to drop.
        return f"odm_xml_text({expression})"

    def prepare(self, connection) -> None:
        connection.ensure_connection()
        connection.connection.create_function("odm_xml_text", 1, _xml_text, deterministic=True)

    def to_escape(self, expressions: list[str]) -> str:
        return " OR ".join(f"{expression} REGEXP {self._TO_ESCAPE}" for expression in expressions)

    def json_rows(self, names: list[str], integers: int) -> str:
        columns = [f"json_extract(value, '$[{n}]') AS {name}" for n, name in enumerate(names)]
        return f"SELECT {', '.join(columns)} FROM json_each(%s)"

    def date(self, expression: str) -> str:
        return expression  # stored as ISO text already

    def query(self, parent_sql: str, columns: int, texts: list[str], children: list[_Child]):
        ctes = [f"p(odm_subject_id, pk, {_sql_columns(columns)}) AS ({parent_sql})"]
        texts = list(texts)
        for number, child in enumerate(children):
            materialized = "MATERIALIZED " if child.given else ""  # and indexed by SQLite
            ctes.append(
                f"g{number}(parent, pk, {_sql_columns(child.columns)}) AS {materialized}"
                f"({child.sql})"
            )
            joined = self.joined("x", "''", f"g{number}.pk")  # in the subquery's order
            texts.insert(
                -1,
                f"coalesce((SELECT {joined} FROM (SELECT {child.text} AS x "
                f"FROM g{number} WHERE g{number}.parent = p.pk ORDER BY g{number}.pk)), '')",
            )
        return (
            f"WITH {', '.join(ctes)} SELECT p.odm_subject_id, p.pk, {' || '.join(texts)} "
            "FROM p ORDER BY p.odm_subject_id, p.pk"
        )


def _xml_text(value: str | None) -> str | None:
    return None if value is None else _text(value)


_POSTGRESQL, _SQLITE = _PostgreSQL(), _SQLite()


def _dialect(alias: str) -> _PostgreSQL:
    return dialect_for(connections[alias], _POSTGRESQL, _SQLITE)


def _sql_escaped(column: str, dialect) -> str:
    """SQL of a text column as ``_text`` then libxml2's attribute escaping write it."""
    expression = dialect.drop_not_xml(column)
    for char, entity in _ATTRIBUTE_ENTITIES:
        expression = f"replace({expression}, {dialect.char(char)}, {literal(entity)})"
    return expression


_COMPUTED = models.TextField()  # the type of a value Python computes: its ODM text


def _field(model: type[models.Model] | None, lookup) -> models.Field:
    return _COMPUTED if lookup is None else _stored_field(model, lookup)


def _sql_value(column: str, model_field: models.Field, dialect) -> str:
    """SQL of ``odm_value`` of a column: the value's ODM text (escaped), NULL when there is no
    value (the types of ``layout._sql_writes``)."""
    kind = model_field.get_internal_type()
    if kind == "BooleanField":
        return f"(CASE {column} WHEN true THEN '1' WHEN false THEN '0' END)"
    if kind in _INTEGER_TYPES:
        return dialect.text(column)
    if kind == "DecimalField":
        return dialect.decimal(column, model_field.decimal_places)
    if kind == "DateField":
        return dialect.date(column)
    if kind == "DateTimeField" and settings.USE_TZ:
        return dialect.utc_iso(column)
    if kind in _TEXT_TYPES:
        return _sql_escaped(f"nullif({column}, '')", dialect)
    raise TypeError(f"the SQL does not write a {kind} (layout._sql_writes)")


def _sql_group(start: str, items: str) -> str:
    """SQL of an ``ItemGroupData`` from the SQL of its start tag (no end) and of its items."""
    # ``items`` once: a CTE's column is the expression itself when the planner inlines it.
    return f"coalesce({start} || '>' || nullif({items}, '') || '</ItemGroupData>', {start} || '/>')"


def _sql_items(group: _Group, model, lookups: list, dialect) -> str:
    """SQL of a row's ``ItemData`` elements from its columns ``c0``, ``c1``... ('' if none).
    Text is escaped only in the rare row where a text value has a character to escape (or to
    drop): one pattern test per row instead of eight functions per value."""
    fields = [_field(model, lookup) for lookup in lookups]
    texts = [f"c{n}" for n, f in enumerate(fields) if f.get_internal_type() in _TEXT_TYPES]
    plain, escaped = [], []
    for number, (oid, model_field) in enumerate(zip(group.oids, fields, strict=True)):
        value = _sql_value(f"c{number}", model_field, dialect)
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
        f"(CASE WHEN {dialect.to_escape(texts)} THEN {' || '.join(escaped)} "
        f"ELSE {' || '.join(plain)} END)"
    )


def _sql_key(group: _Group, model, lookups: list, dialect) -> str:
    """SQL of ``_repeat_key`` of a row: its key item's text, or its id. A text key is escaped
    only in the rare row that has a character to escape (the escaping functions on every row
    were a large share of the query's time)."""
    if group.key is None:
        return dialect.text("pk")
    column = f"c{group.key}"
    model_field = _field(model, lookups[group.key])
    value = _sql_value(column, model_field, dialect)
    if model_field.get_internal_type() in _TEXT_TYPES:
        value = (
            f"(CASE WHEN {dialect.to_escape([column])} THEN {value} ELSE nullif({column}, '') END)"
        )
    return f"coalesce(nullif({value}, ''), {dialect.text('pk')})"


def _sql_columns(count: int) -> str:
    return ", ".join(f"c{n}" for n in range(count))


@dataclass(frozen=True)
class _Computed:
    """What Python computed of a batch of records, as JSON for the SQL: per record [id,
    signature text, each computed item's value], per computed child group [record id, row id,
    each item's value]. A value is its ODM text, a text as it is (escaped by the SQL)."""

    records: str
    children: tuple[str, ...]


def _fragment_query(
    layout: _Layout,
    queryset: models.QuerySet,
    part: tuple[int, int] | None = None,
    computed: _Computed | None = None,
) -> tuple[str, tuple]:
    """The SQL writing the scoped records' ``FormData`` in subject then id order (on PostgreSQL
    one row per subject: subject id, first id, the text of its records; on SQLite one row per
    record). Each record's child rows are all of them, as the API reads them. ``part`` (k, n):
    only the subjects whose id is k modulo n (one of n queries that share the work).
    ``computed``: the values Python computed, joined by record id (and the signature)."""
    dialect = _dialect(queryset.db)
    path = layout.values_path
    form_model = layout.form.model_class()
    items = _sql_items(layout.main, form_model, path.lookups, dialect)
    parents = _value_parents(layout, queryset)
    if part is not None:
        parents = parents.alias(odm_part=F("odm_subject_id") % part[1]).filter(odm_part=part[0])
    head = literal(f'<FormData FormOID="{_xml_attribute(layout.oid)}"')
    if layout.form.repeating:
        key = _sql_key(layout.main, form_model, path.lookups, dialect)
        head += f" || ' FormRepeatKey=\"' || {key} || '\"'"
    main_start = literal(f'<ItemGroupData ItemGroupOID="{_xml_attribute(layout.main.oid)}"')
    texts = [f"{head} || '>'", _sql_group(main_start, items), "'</FormData>'"]
    columns = len(path.lookups)
    if computed is None:
        parent_sql, parent_params = parents.values_list(
            "odm_subject_id", "pk", *path.lookups
        ).query.sql_with_params()
        params = list(parent_params)
    else:
        parent_sql, params = _computed_parents(parents, path.lookups, computed, dialect)
        texts.insert(1, f"coalesce(c{columns}, '')")  # the signature, before the item groups
        columns += 1
    children = []
    computed_children = iter(computed.children if computed else ())
    for group, (model, parent_field, lookups) in zip(layout.children, path.children, strict=True):
        child_items = _sql_items(group, model, lookups, dialect)
        if model is None:
            names = ["parent", "pk", *(f"c{n}" for n in range(len(lookups)))]
            child_sql = dialect.json_rows(names, 2)
            child_params: tuple = (next(computed_children),)
        else:
            child_sql, child_params = (
                model._default_manager.values_list(parent_field, "pk", *lookups)
                .order_by()
                .query.sql_with_params()
            )
        params += child_params
        start = literal(
            f'<ItemGroupData ItemGroupOID="{_xml_attribute(group.oid)}" ItemGroupRepeatKey="'
        )
        start += f" || {_sql_key(group, model, lookups, dialect)} || '\"'"
        text = _sql_group(start, child_items)
        children.append(_Child(child_sql, len(lookups), text, given=model is None))
    return dialect.query(parent_sql, columns, texts, children), tuple(params)


def _computed_parents(parents, lookups: list, computed: _Computed, dialect) -> tuple[str, list]:
    """SQL of the records' subject, id, items (stored: read by the database; computed: from
    the JSON) and signature text, in that order."""
    stored = {
        f"s{n}": F(lookup) if isinstance(lookup, str) else lookup
        for n, lookup in enumerate(lookups)
        if lookup is not None
    }
    sql, params = (
        parents.values("odm_subject_id", odm_pk=F("pk"), **stored)
        .order_by()
        .query.sql_with_params()
    )
    names = ["pk", "signature", *(f"v{n}" for n, lookup in enumerate(lookups) if lookup is None)]
    columns = [f"b.s{n}" if lookup is not None else f"j.v{n}" for n, lookup in enumerate(lookups)]
    return (
        f"SELECT b.odm_subject_id, b.odm_pk, {', '.join([*columns, 'j.signature'])} "
        f"FROM ({sql}) AS b JOIN ({dialect.json_rows(names, 1)}) AS j ON j.pk = b.odm_pk",
        [*params, computed.records],
    )


def _fragments(
    layout: _Layout,
    queryset: models.QuerySet,
    threaded: bool = False,
    compute: Callable[[object], tuple] | None = None,
) -> Iterator[_Fragment]:
    """The records' ``FormData`` written by the database. ``compute(record)``: what Python
    computes of a record (``_Computed``'s values: items, child rows, signature), for a form
    that has any, or whose records are the subjects. Else ``threaded`` and outside a
    transaction: ``background.threads()`` queries share the subjects, each read ahead by a
    thread on its own connection (``exports.background``), merged back in subject order."""
    # Now, before any stream of the file has a statement open (SQLite refuses a new function then).
    _dialect(queryset.db).prepare(connections[queryset.db])
    if compute is not None:
        return _computed_fragments(layout, queryset, compute)
    if not threaded or not background.usable(queryset.db):
        return _fragment_rows(queryset.db, *_fragment_query(layout, queryset))
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


def _json(rows: list) -> str:
    return json.dumps(rows, ensure_ascii=False)  # characters as they are, not surrogate pairs


def _computed_groups(layout: _Layout) -> int:
    return sum(model is None for model, _, _ in layout.values_path.children)


def _computed_fragments(layout: _Layout, queryset, compute) -> Iterator[_Fragment]:
    """The records read as instances, a batch at a time: Python computes what it must, the
    database writes the text (one query per batch)."""
    # In the SQL's order (subject, id): a subject's records split between two batches stay so.
    instances = records.stream(_ordered(queryset, layout.form).order_by("odm_subject_id", "pk"))
    while batch := list(itertools.islice(instances, COMPUTED_BATCH)):
        rows, children = [], [[] for _ in range(_computed_groups(layout))]
        for record in batch:
            values, child_rows, signature = compute(record)
            rows.append([record.pk, signature, *values])
            for found, computed in zip(children, child_rows, strict=True):
                found.extend(computed)
        computed = _Computed(_json(rows), tuple(_json(found) for found in children))
        pks = [record.pk for record in batch]
        sql, params = _fragment_query(layout, queryset.filter(pk__in=pks), computed=computed)
        if layout.form.subject_path != "pk":
            yield from _fragment_rows(queryset.db, sql, params)
            continue
        subjects = {record.pk: record for record in batch}
        for fragment in _fragment_rows(queryset.db, sql, params):
            yield replace(fragment, subject=subjects[fragment.odm_subject_id])


def _as_fragments(rows: Iterable[tuple]) -> Iterator[_Fragment]:
    """One fragment per subject (the rows: per subject, or per record in subject order)."""
    for subject_id, group in itertools.groupby(rows, key=itemgetter(0)):
        found = list(group)
        text = found[0][2] if len(found) == 1 else "".join(row[2] for row in found)
        yield _Fragment(subject_id, found[0][1], text)


def _fragment_rows(alias: str, sql: str, params: tuple) -> Iterator[_Fragment]:
    with (
        records.without_jit(alias),
        connections[alias].chunked_cursor() as cursor,  # server-side: memory stays flat
    ):
        cursor.execute(sql, params)
        yield from _as_fragments(_fetched(cursor))


def _fetched(cursor) -> Iterator[tuple]:
    while rows := cursor.fetchmany(FRAGMENT_CHUNK):
        yield from rows
