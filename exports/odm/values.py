"""Values as ODM text, and the escaping libxml2 applies to attribute values."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from django.utils import timezone

# --- values --------------------------------------------------------------------------------------

_NOT_XML_CODES = (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))  # and U+FFFE, U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value) if _NOT_XML.search(value) else value


def _datetime(value: datetime) -> str:
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _float(value: float) -> str:
    text = repr(value)
    return _decimal(Decimal(text)) if "e" in text or "E" in text else text


_FORMATS: dict[type, Callable[[object], str]] = {
    str: _text,
    bool: lambda v: "1" if v else "0",
    int: str,
    Decimal: _decimal,
    float: _float,
    date: date.isoformat,
    datetime: _datetime,
}


def odm_value(value) -> str | None:
    """A value as ODM text, or None when there is no value (None or empty)."""
    if value is None or value == "":
        return None
    convert = _FORMATS.get(type(value))
    if convert is None:
        if isinstance(value, datetime):
            convert = _datetime
        elif isinstance(value, date):
            convert = date.isoformat
        else:
            return _text(str(value)) or None
    return convert(value)


def _xml_attribute(text: str) -> str:
    """``text`` escaped as libxml2 escapes an attribute value."""
    for char, entity in _ATTRIBUTE_ENTITIES:
        text = text.replace(char, entity)
    return text


_ATTRIBUTE_ENTITIES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
    ("\t", "&#9;"),
)


_ESCAPE = re.compile('[&<>"\n\r\t]')


def _attribute(text: str) -> str:
    """``text`` as an attribute value (libxml2's escaping; ``text`` is valid XML already)."""
    return _xml_attribute(text) if _ESCAPE.search(text) else text


def _repeat_key(key, fallback) -> str:
    return odm_value(key) or str(fallback)
