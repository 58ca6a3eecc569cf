"""SQL that builds a dataset's rows as the very JSON text ``encode(row)`` gives.

Encoding a row in Python costs more than reading it, so the database writes each row's text
(``json_lines``), from SQL generated here: to_json() (PostgreSQL) and json_quote() (SQLite)
escape as Python's json does with ensure_ascii=False; constants are encoded here once. The
records are the scoped queryset's own SQL (only its select list is replaced, never its WHERE),
in the Reader's order (the queryset's, then pk), fetched BATCH rows at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import F, QuerySet

from core.datasets import study_id
from core.sql import PostgreSQL, SQLite, dialect_for, literal

from .reader import BATCH, field_path
from .values import encode

SQL_NULL = "'null'"


class Dialect(PostgreSQL):
    """Dataset-JSON's own spellings: a value's JSON text, SDTM's dates (PostgreSQL here)."""

    newline = "chr(10)"

    def json(self, expr: str) -> str:
        """The JSON text of a value (SQL NULL for NULL)."""
        return f"to_json({expr})::text"

    def utc_seconds(self, expr: str) -> str:
        """A timestamptz as ISO 8601 in UTC, to the second (truncated), no offset."""
        return f"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS')"

    def utc_date(self, expr: str) -> str:
        return f"(({expr}) AT TIME ZONE 'UTC')::date"


class SQLiteDialect(SQLite, Dialect):
    """SQLite 3.40: JSON1, datetimes stored as UTC text."""

    newline = "char(10)"

    def json(self, expr: str) -> str:
        return f"json_quote({expr})"

    def utc_seconds(self, expr: str) -> str:
        # "YYYY-MM-DD HH:MM:SS[.ffffff]", already UTC: strftime() would round, not truncate
        return f"replace(substr({expr}, 1, 19), ' ', 'T')"

    def utc_date(self, expr: str) -> str:
        return f"substr({expr}, 1, 10)"


_DIALECT, _SQLITE = Dialect(), SQLiteDialect()


def dialect() -> Dialect:
    return dialect_for(connection, _DIALECT, _SQLITE)


def sql_json(value) -> str:
    """A constant value as the SQL literal of its JSON text."""
    return literal(encode(value))


def sql_text(expr: str) -> str:
    return f"COALESCE({dialect().json(expr)}, {SQL_NULL})"


def sql_str(expr: str) -> str:
    """``str(value)`` of an integer column, as JSON."""
    sql = dialect()
    return f"COALESCE({sql.json(sql.text(expr))}, {SQL_NULL})"


def sql_integer(expr: str) -> str:
    return f"COALESCE({dialect().text(expr)}, {SQL_NULL})"


def sql_yn(expr: str) -> str:
    return f"(CASE WHEN {expr} THEN '\"Y\"' WHEN NOT {expr} THEN '\"N\"' ELSE {SQL_NULL} END)"


def sql_date(expr: str) -> str:
    """``iso_date`` of a date column (ISO 8601 on both, whatever PostgreSQL's DateStyle)."""
    return f"COALESCE({dialect().json(expr)}, {SQL_NULL})"


def sql_dtc(expr: str) -> str:
    """``dtc`` of a timestamptz column: UTC, to the second (truncated), no offset."""
    sql = dialect()
    return f"COALESCE({sql.json(sql.utc_seconds(expr))}, {SQL_NULL})"


def _key(value) -> str:
    # a number stays a number: SQLite never equals an integer to text
    return str(value) if type(value) is int else literal(str(value))


def sql_case(expr: str, mapping: dict, *, default: str = SQL_NULL) -> str:
    """``mapping[value]`` as JSON text (``default`` for a value it does not map)."""
    whens = " ".join(f"WHEN {_key(k)} THEN {sql_json(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {default} END)"


def sql_usubjid(expr: str) -> str:
    return (
        f"(CASE WHEN {expr} IS NULL OR {expr} = '' THEN {SQL_NULL} "
        f"ELSE {dialect().json(literal(study_id() + '-') + ' || ' + expr)} END)"
    )


def sql_row(parts: Sequence[str]) -> str:
    """The JSON array of the parts (each the SQL of one value's JSON text, never NULL)."""
    return "'[' || " + " || ',' || ".join(parts) + " || ']'"


def ordering_of(queryset: QuerySet) -> list[str] | None:
    """The Reader's total order of the records (the queryset's, then pk), when every term is a
    path of concrete fields; else None."""
    model = queryset.model
    ordering = [*(queryset.query.order_by or model._meta.ordering), "pk"]
    for term in ordering:
        if not isinstance(term, str) or not field_path(model, term.lstrip("-").replace("__", ".")):
            return None
    return ordering


def aliased_sql(queryset: QuerySet, columns: dict[str, str]) -> tuple[str, list] | None:
    """The SQL of ``queryset`` selecting ``columns`` (alias -> field lookup) unordered; None
    for a queryset that can hold no row."""
    selected = (
        queryset.prefetch_related(None)
        .order_by()
        .values(**{alias: F(path) for alias, path in columns.items()})
    )
    try:
        sql, params = selected.query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, list(params)


def order_clause(table: str, ordering: Sequence[str], aliases: Sequence[str]) -> str:
    return ", ".join(
        f"{table}.{alias} {'DESC' if term.startswith('-') else 'ASC'}"
        for term, alias in zip(ordering, aliases, strict=True)
    )


def fetched_lines(sql: str | None, params: list) -> Iterator[str]:
    """The one text column of ``sql``'s rows, BATCH rows a block, through a server-side cursor
    (``sql`` None: no row)."""
    if sql is None:
        return
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(BATCH):
            yield "\n".join(line for (line,) in batch)


# --- a form's items: each item's JSON text from its type and its model field ----------------------


def model_field(model, path: str):
    """The field at the end of a ``values()`` lookup ("subject__site__code")."""
    if path == "pk":
        return model._meta.pk
    for part in path.split("__"):
        field = model._meta.get_field(part)
        model = field.related_model or model
    return field


def item_sql(item_type: str, field, expr: str) -> str:
    """``item_value(item, value)`` of the column ``expr`` (a ``field``) as JSON text, by the
    item's type (``ItemType``'s value)."""
    sql, kind = dialect(), field.get_internal_type()
    if item_type == "boolean":
        return sql_yn(expr)
    if item_type == "integer":
        return sql_integer(expr)
    if item_type == "float":  # decimal text, the field's decimal places
        return f"COALESCE({sql.json(sql.decimal(expr, field.decimal_places))}, {SQL_NULL})"
    if item_type == "date" and kind == "DateTimeField":
        return f"COALESCE({sql.json(sql.utc_date(expr))}, {SQL_NULL})"
    if item_type == "datetime":
        return f"COALESCE({sql.json(sql.utc_iso(expr))}, {SQL_NULL})"
    if item_type == "text" and kind not in ("CharField", "TextField"):
        return sql_str(expr)
    return sql_text(expr)


def rows_sql(
    queryset: QuerySet,
    parts: dict[str, tuple[str, str]],
    *,
    subject: str | None,
    child: tuple[QuerySet, str, dict[str, tuple[str, str]]] | None = None,
) -> tuple[str | None, list] | None:
    """The SQL of ``queryset``'s rows as JSON text in the Reader's order: STUDYID, USUBJID
    (``subject``: its lookup, None for a form of no subject), then ``parts`` (alias -> (item
    type, field lookup)). With ``child`` (its rows, the foreign key to the record, its parts):
    one row per child row, the record's values first. None when an order term is no field
    path; (None, []) for no row."""
    ordering = ordering_of(queryset)
    if ordering is None:
        return None
    columns = {"x_pk": "pk", **{alias: path for alias, (_, path) in parts.items()}}
    lead = [sql_json(study_id())]
    if subject:
        columns["x_subject"] = subject
        lead.append(sql_usubjid("a.x_subject"))
    columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(ordering)}
    selected = aliased_sql(queryset, columns)
    values = [_item(queryset.model, parts, "a")]
    order = [order_clause("a", ordering, [f"k{n}" for n in range(len(ordering))])]
    sources = [(selected, "a", "")]
    if child is not None:
        children, key, child_parts = child
        child_ordering = ordering_of(children)
        if child_ordering is None:
            return None
        child_columns = {"x_parent": f"{key}_id"}
        child_columns |= {alias: path for alias, (_, path) in child_parts.items()}
        child_columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(child_ordering)}
        values.append(_item(children.model, child_parts, "c"))
        order.append(
            order_clause("c", child_ordering, [f"k{n}" for n in range(len(child_ordering))])
        )
        sources.append((aliased_sql(children, child_columns), "c", " ON c.x_parent = a.x_pk"))
    if any(built is None for built, _, _ in sources):
        return None, []
    source = " JOIN ".join(f"({built[0]}) {alias}{on}" for built, alias, on in sources)
    line = sql_row([*lead, *(value for found in values for value in found)])
    sql = f"SELECT {line} FROM {source} ORDER BY {', '.join(order)}"
    return sql, [param for built, _, _ in sources for param in built[1]]


def _item(model, parts: dict[str, tuple[str, str]], table: str) -> list[str]:
    return [
        item_sql(kind, model_field(model, path), f"{table}.{alias}")
        for alias, (kind, path) in parts.items()
    ]
