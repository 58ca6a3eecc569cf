"""On PostgreSQL, a form's CSV straight from ``COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)``:
the same scope, filters, order, columns and cells as the Python path (``exports.flatten``), at
the database's own speed.

A form qualifies when every CSV column is a database column of the item's own type (no property,
function or reader item) and each child group is pivoted on a key unique per record; otherwise
the Python path writes the CSV. The cells are written as ``exports.formatting`` writes them, in
the query's own select list: COPY writes numbers and dates itself, and the planner places the
projection (README's Benchmarks: why not an outer query).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.db import connection
from django.db.models import (
    F,
    FilteredRelation,
    Func,
    Q,
    QuerySet,
    TextField,
    UniqueConstraint,
)

from core.export_spec import ChildGroup, ExportForm, ItemType

from . import extras, flatten, records
from .columns import column_of

# Tests compare both paths by switching this off.
ENABLED = True


_UTC_ISO = (
    "replace(to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US') || 'Z', "
    "'.000000Z', 'Z')"
)


class UtcIso(Func):
    """A date-time as ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` in UTC (Python's ``isoformat``)."""

    template = _UTC_ISO.format("%(expressions)s")
    output_field = TextField()


def cell_sql(item_type: ItemType, column: str) -> str:
    """The SQL of one CSV cell from the SQL of its stored value. COPY writes whole numbers
    and dates itself: a date as ``YYYY-MM-DD``, DateStyle being ISO (psycopg reads date-times
    in no other style, so a connection Django can use has it)."""
    if item_type in (ItemType.INTEGER, ItemType.DATE):
        return column
    if item_type == ItemType.BOOLEAN:
        return f"({column})::text"  # true / false (COPY writes t / f)
    if item_type == ItemType.DATETIME:
        return _UTC_ISO.format(column)
    return f"NULLIF(({column})::text, '')"


@dataclass(frozen=True)
class Cell:
    """One CSV column: the ORM path of its stored value, and how it is written."""

    path: str
    item_type: ItemType


def cell_expression(cell: Cell):
    """The ORM expression of one CSV cell (``cell_sql`` of its stored value)."""
    stored = F(cell.path)
    written = cell_sql(cell.item_type, "%(expressions)s")
    if written == "%(expressions)s":
        return stored
    return Func(stored, template=written, output_field=TextField())


def _typed_column(model, item):
    column = column_of(model, item.source)
    if column is None or column.item_type != item.type or item.type == ItemType.FLOAT:
        return None
    return column


def _unique_per_key(group: ChildGroup, key_path: str) -> bool:
    model = group.model_class()
    wanted = {group.parent_field, key_path}
    together = [set(fields) for fields in model._meta.unique_together]
    constraints = [
        set(c.fields)
        for c in model._meta.constraints
        if isinstance(c, UniqueConstraint) and c.condition is None
    ]
    return wanted in together + constraints


def _pivot_cells(form, index: int, group: ChildGroup) -> tuple[dict, list] | None:
    keys = extras.pivot_keys(form, group)
    model = group.model_class()
    if not keys or not group.related or model is None or not group.parent_field:
        return None
    key_item = next(i for i in group.items if i.name == group.key)
    key_column = _typed_column(model, key_item)
    if key_column is None or not _unique_per_key(group, key_column.path):
        return None
    relations, cells = {}, []
    for k, key in enumerate(keys):
        alias = f"_pivot{index}_{k}"
        relations[alias] = FilteredRelation(
            group.related, condition=Q(**{f"{group.related}__{key_column.path}": key})
        )
        for item in group.items:
            if item.name == group.key:
                continue
            column = _typed_column(model, item)
            if column is None:
                return None
            cells.append(Cell(f"{alias}__{column.path}", item.type))
    return relations, cells


def plan(form: ExportForm, *, identifiers: bool) -> tuple[dict, list[Cell]] | None:
    """(the pivots' joins, every CSV column in order), or None when a column is computed in
    Python."""
    if extras.reader_items(form):
        return None
    model = form.model_class()
    relations, cells = {}, []
    if not flatten.has_id_item(form):
        cells.append(Cell("pk", ItemType.INTEGER))
    for item in form.visible_items(identifiers=identifiers):
        column = _typed_column(model, item)
        if column is None:
            return None
        cells.append(Cell(column.path, item.type))
    for index, group in enumerate(form.children):
        pivot = _pivot_cells(form, index, group)
        if pivot is None:
            return None
        relations.update(pivot[0])
        cells.extend(pivot[1])
    return relations, cells


CHUNK_BYTES = 256 * 1024


def usable() -> bool:
    return ENABLED and connection.vendor == "postgresql"


def lines(queryset: QuerySet, header: list[str], copy_plan: tuple[dict, list]) -> Iterator:
    """The header (Python's writer) and the rows (COPY's blocks) of ``queryset`` (scoped,
    filtered and ordered already)."""
    relations, cells = copy_plan
    names = [f"_cell{i}" for i in range(len(cells))]
    rows = (
        queryset.select_related(None)
        .prefetch_related(None)
        .annotate(**relations)
        .annotate(**{name: cell_expression(c) for name, c in zip(names, cells, strict=True)})
        .values_list(*names)
    )
    sql, params = rows.query.sql_with_params()
    # The parameters bound here, as psycopg binds a COPY's (client-side): under DEBUG the cursor
    # is Django's CursorDebugWrapper, whose copy() takes the statement alone (and logs it).
    statement = connection.ops.compose_sql(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)", params)
    yield from flatten.csv_lines(header, [])
    with (
        records.without_jit(connection.alias),
        connection.cursor() as cursor,
        cursor.copy(statement) as copy,
    ):
        # COPY hands over about a row per block: pass them on in larger chunks, so the
        # response's per-chunk cost is paid once per CHUNK_BYTES, not once per row.
        pending, size = [], 0
        for block in copy:
            pending.append(bytes(block))
            size += len(block)
            if size >= CHUNK_BYTES:
                yield b"".join(pending)
                pending, size = [], 0
        if pending:
            yield b"".join(pending)
