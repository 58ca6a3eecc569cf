"""What the registry (``core.export_spec``) cannot say yet, in one place, for every format of the
API (JSON, CSV) to read:

* ``READER_ITEMS``: items whose value depends on who reads them. A data query's offending values
  may hold a date of birth: ``queries.selectors.shown_snapshot`` masks it for the sponsor's
  people, as the query pages and the admin do.

A child group pivots (one CSV column per key value and item) when its key item has a code list.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from core.export_spec import ChildGroup, ExportForm
from queries.selectors import shown_snapshot


@dataclass(frozen=True)
class ReaderItem:
    """An exported value that depends on the reader: ``value(record, user)`` gives plain JSON
    (a dict, a list, text, a number); the CSV writes it as JSON text."""

    name: str
    label: str
    value: Callable[[object, object], object]


READER_ITEMS: dict[str, tuple[ReaderItem, ...]] = {
    "queries": (
        ReaderItem(
            "value_snapshot",
            "The offending values when the query was raised (or last changed); direct "
            "identifiers are not shown to the sponsor's people.",
            shown_snapshot,
        ),
    ),
}


def reader_items(form: ExportForm) -> tuple[ReaderItem, ...]:
    return READER_ITEMS.get(form.name, ())


def pivot_keys(form: ExportForm, group: ChildGroup) -> tuple[str, ...]:
    """The key values of ``group``'s CSV columns (its key item's code list), or () when the
    group has no key to pivot on: its rows go in one JSON column."""
    if not group.key:
        return ()
    key_item = next(i for i in group.items if i.name == group.key)
    if key_item.codelist:
        return tuple(code for code, _ in key_item.codelist)
    return ()
