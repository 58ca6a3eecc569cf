"""The query parameters of the sponsor API, read strictly: a parameter that is malformed, out of
range, unknown, or a value outside its code list is a 400 with a sentence naming it, never a 500
and never silently ignored (a mistyped ``updated_since`` must not turn into a full pull).

* ``updated_since`` / ``since``: an ISO 8601 date-time (``2024-05-01T09:30:00Z``, an offset
  ``+02:00`` from -12:00 to +14:00, the offsets in use; no offset = UTC) or a date
  (``2024-05-01`` = its midnight UTC).
* ``page_size``: a whole number from 1 to the endpoint's maximum.
* a filter on an item: its code list, a boolean, a whole number, or text matched exactly.
* an empty value (``?site=``, ``?updated_since=``) is a 400 like a malformed one: a client
  leaves a parameter out not to filter (``refuse_empty``); only a free-text filter takes it,
  as the blank item matched exactly (``queries?check_code=``: the queries raised by hand).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime

from rest_framework.exceptions import ValidationError

from core.export_spec import Item, ItemType

# The extended ISO 8601 forms: a date, optionally a time (seconds and up to 6 decimals
# optional), and an offset only with a time.
ISO_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
OFFSET = re.compile(r"T?\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?([+-])(\d{2}):?(\d{2})$")
# The UTC offsets in use on Earth (Baker Island's -12:00 to Kiribati's +14:00), in minutes.
OFFSET_RANGE = (-12 * 60, 14 * 60)
# What the OpenAPI schema promises a date-time parameter takes (``format: date-time``, RFC 3339,
# narrowed to what ``parse_datetime`` reads): years 0001 to 9999, seconds with up to 6
# decimals, Z or an offset from -12:00 to +14:00. ``parse_datetime`` takes a date alone too.
DATETIME_PATTERN = (
    r"^(?:000[1-9]|00[1-9]\d|0[1-9]\d{2}|[1-9]\d{3})-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?"
    r"(?:Z|\+(?:0\d|1[0-3]):[0-5]\d|\+14:00|-(?:0\d|1[01]):[0-5]\d|-12:00)$"
)
# A whole number a filter takes (``parse_item_value``: up to 18 digits).
INTEGER_BOUND = 10**18 - 1
TRUE_WORDS = {"true", "1", "yes"}
FALSE_WORDS = {"false", "0", "no"}


def list_pattern(names: Iterable[str], *, descending: bool = False) -> str:
    """The schema's pattern of a comma-separated list of ``names`` (``ordering``: each may
    start with - for descending; ODM ``forms``)."""
    # re.escape's "\\-" is not a valid escape in an ECMA (unicode) regex: a - needs none.
    literals = (re.escape(name).replace("\\-", "-") for name in names)
    one = ("-?" if descending else "") + "(?:" + "|".join(literals) + ")"
    return f"^{one}(?:,{one})*$"


def refuse(name: str, sentence: str):
    raise ValidationError({name: [sentence]})


def parse_datetime(name: str, text: str) -> datetime:
    """``text`` as an aware UTC date-time, or a 400 naming ``name``."""
    example = "e.g. 2024-05-01T00:00:00Z (or a date, 2024-05-01)"
    text = text.strip()
    if re.search(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)? \d{2}:?\d{2}$", text):
        refuse(
            name,
            f"{name} {text!r} has a space where its offset's + sign was: write + as %2B in a "
            "URL, or give the time in UTC with Z.",
        )
    if not ISO_DATETIME.match(text):
        refuse(name, f"{name} {text!r} is not an ISO 8601 date-time: give one in UTC, {example}.")
    offset = OFFSET.search(text)
    if offset:
        sign, hours, minutes = offset.groups()
        minutes_east = (1 if sign == "+" else -1) * (int(hours) * 60 + int(minutes))
        if int(minutes) > 59 or not OFFSET_RANGE[0] <= minutes_east <= OFFSET_RANGE[1]:
            refuse(
                name,
                f"{name} {text!r} has the UTC offset {sign}{hours}:{minutes}, which no place "
                f"uses (they run from -12:00 to +14:00): give the time in UTC with Z, {example}.",
            )
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        refuse(
            name,
            f"{name} {text!r} is not a date-time that exists (no such month, day or time of "
            f"day): give one in UTC, {example}.",
        )
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        # Before 0001-01-01 or after 9999-12-31 in UTC (0001-01-01T00:00:00+01:00, a valid
        # RFC 3339 date-time): no record is that old or that new, so the first or last instant
        # Python has selects exactly the same records.
        return (
            datetime.min.replace(tzinfo=UTC)
            if value.year == 1
            else datetime.max.replace(tzinfo=UTC)
        )


def parse_page_size(text: str, maximum: int) -> int:
    if not re.fullmatch(r"\d{1,7}", text.strip()) or not 1 <= int(text) <= maximum:
        refuse("page_size", f"page_size must be a whole number from 1 to {maximum}, not {text!r}.")
    return int(text)


def parse_item_value(name: str, item: Item, text: str):
    """One value of a filter on ``item``: within its code list, a boolean, a whole number, or
    text (matched exactly)."""
    if item.type == ItemType.BOOLEAN:
        word = text.strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            refuse(name, f"{name} is true or false, not {text!r}.")
        return word in TRUE_WORDS
    if item.codelist and text not in {code for code, _ in item.codelist}:
        codes = ", ".join(code for code, _ in item.codelist)
        refuse(name, f"{name} {text!r} is not one of its values: {codes}.")
    if item.type == ItemType.INTEGER:
        if not re.fullmatch(r"-?\d{1,18}", text.strip()):
            refuse(name, f"{name} is a whole number, not {text!r}.")
        return int(text)
    return text


def blank_matching(filters) -> set[str]:
    """The free-text filters of ``FormApi.filters`` (no code list): for them an empty value is
    the blank item, matched exactly like any text (``queries?check_code=``: raised by hand)."""
    return {
        name
        for name, (item, _) in filters.items()
        if item.type == ItemType.TEXT and not item.codelist
    }


def refuse_empty(query, blank_matches: Iterable[str] = ()) -> None:
    """An empty value (``?site=``, ``?updated_since=``) is a 400 like a malformed one: a client
    leaves a parameter out not to filter, and an empty value (a template with nothing filled
    in) must not turn into a full pull. No parameter is ever ignored. The one exception is a
    free-text filter (``blank_matches``), where the empty value is a value: the blank item."""
    allowed = set(blank_matches)
    for name in sorted(query.keys()):
        if name in allowed:
            continue
        if any(not value.strip() for value in query.getlist(name)):
            refuse(name, f"{name} is empty: give a value, or leave the parameter out.")


def refuse_unknown(given: Iterable[str], known: Iterable[str]) -> None:
    unknown = sorted(set(given) - set(known))
    if unknown:
        names = ", ".join(sorted(known))
        plural = "s" if len(unknown) > 1 else ""
        refuse(
            unknown[0],
            f"Unknown parameter{plural} {', '.join(unknown)}. This endpoint takes: {names}.",
        )
