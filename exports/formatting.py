"""How an exported value is written, the same in every format of the API: JSON and CSV.

* dates ISO 8601 (``2024-05-01``), date-times in UTC with ``Z`` (``2024-05-01T09:30:00Z``,
  microseconds only when there are some, as Python's ``isoformat`` writes them);
* booleans ``true``/``false``, integers and floats as numbers, everything else as text;
* nothing (None) is JSON ``null`` and an empty CSV cell.

``json_value(item_type, value)`` gives the JSON value, ``csv_text(json_value)`` the CSV cell;
a CSV cell is therefore always the JSON value written as text, and a CSV column of nested data
(``json_text``) is the JSON of the API's nested list.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

from core.audit import HIDDEN_VALUE
from core.export_spec import ItemType


def utc_iso(value: datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def plain(value):
    """Any stored value as JSON: dates ISO, date-times UTC with Z, decimals as numbers; lists
    and dicts (JSON fields) value by value."""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def json_value(item_type: ItemType, value):
    """An item's value as the JSON of the API (and, through ``csv_text``, the CSV cell)."""
    if value is None:
        return None
    if item_type == ItemType.BOOLEAN:
        return bool(value)
    if item_type == ItemType.INTEGER and not isinstance(value, bool):
        return int(value)
    if item_type == ItemType.FLOAT:
        return float(value)
    if item_type == ItemType.TEXT and not isinstance(value, dict | list):
        return str(value.value if hasattr(value, "value") else value)
    return plain(value)


def csv_text(value) -> str:
    """A JSON value as a CSV cell: empty for null, true/false, numbers and text as written."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, dict | list):
        return json_text(value)
    return str(value)


def json_text(value) -> str:
    """Nested data in one CSV cell: compact JSON, keys in the order of the items."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def masked(value, hidden_keys) -> object:
    """``value`` with the values under ``hidden_keys`` replaced (nested dicts and lists too)."""
    if isinstance(value, dict):
        return {
            k: (HIDDEN_VALUE if k in hidden_keys and v is not None else masked(v, hidden_keys))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [masked(v, hidden_keys) for v in value]
    return value
