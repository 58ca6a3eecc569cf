"""A form's rows as flat CSV rows, derived from the registry like the JSON of the API.

Columns: ``id`` (unless the form has an ``id`` item), the form's items (no direct identifiers
for the sponsor's people), the reader items, then each child group pivoted to
``<group>_<key value>_<item>`` when its key has known values, else one column holding the API's
nested JSON list. A cell is the JSON value as text (``exports.formatting``).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from core.export_spec import ChildGroup, ExportForm, Item

from . import extras
from .formatting import csv_text, json_text, json_value, plain


def has_id_item(form: ExportForm) -> bool:
    return any(item.name == "id" for item in form.items)


def child_json(group: ChildGroup, record) -> list[dict]:
    """A child group's rows as the API's nested list (and the CSV's JSON column)."""
    return [
        {item.name: json_value(item.type, item.value(child)) for item in group.items}
        for child in group.records(record)
    ]


@dataclass(frozen=True)
class Table:
    header: list[str]
    row: Callable[[object], list[str]]


def _pivot(group: ChildGroup, keys: tuple[str, ...]):
    key_item = next(i for i in group.items if i.name == group.key)
    others = [i for i in group.items if i.name != group.key]
    header = [f"{group.name}_{key}_{item.name}" for key in keys for item in others]

    def cells(record) -> list[str]:
        by_key = {
            str(json_value(key_item.type, key_item.value(c))): c for c in group.records(record)
        }
        out = []
        for key in keys:
            child = by_key.get(key)
            for item in others:
                value = None if child is None else item.value(child)
                out.append(csv_text(json_value(item.type, value)))
        return out

    return header, cells


def _item_cells(items: tuple[Item, ...], with_id: bool):
    def cells(record) -> list[str]:
        out = [str(record.pk)] if with_id else []
        out.extend(csv_text(json_value(item.type, item.value(record))) for item in items)
        return out

    return cells


def table(form: ExportForm, *, identifiers: bool, user) -> Table:
    """The CSV header and row function of ``form`` for a reader who sees ``identifiers`` or
    not (``exports.records.identifiers_for``)."""
    items = form.visible_items(identifiers=identifiers)
    with_id = not has_id_item(form)
    header = (["id"] if with_id else []) + [item.name for item in items]
    parts = [_item_cells(items, with_id)]
    for reader in extras.reader_items(form):
        header.append(reader.name)
        parts.append(lambda record, reader=reader: [csv_text(plain(reader.value(record, user)))])
    for group in form.children:
        keys = extras.pivot_keys(form, group)
        if keys:
            group_header, cells = _pivot(group, keys)
            header.extend(group_header)
            parts.append(cells)
        else:
            header.append(group.name)
            parts.append(lambda record, group=group: [json_text(child_json(group, record))])

    def row(record) -> list[str]:
        out = []
        for cells in parts:
            out.extend(cells(record))
        return out

    return Table(header, row)


class _Echo:
    """The pseudo-buffer ``csv.writer`` writes to: each row comes back as its text."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: list[str], rows: Iterable[list[str]], batch: int = 200) -> Iterator[str]:
    """The CSV text, ``batch`` rows at a time: a generator, so memory stays flat.

    Lines end with LF; a cell holding a comma, a quote, a CR or a LF is quoted (quotes doubled),
    as PostgreSQL's ``COPY ... CSV`` writes them (``exports.copy_csv``). The writer ends its rows
    with CRLF so that it quotes a lone CR too; the CR is then dropped."""
    writer = csv.writer(_Echo(), lineterminator="\r\n")
    yield writer.writerow(header)[:-2] + "\n"
    chunk = []
    for row in rows:
        chunk.append(writer.writerow(row)[:-2] + "\n")
        if len(chunk) >= batch:
            yield "".join(chunk)
            chunk.clear()
    if chunk:
        yield "".join(chunk)
