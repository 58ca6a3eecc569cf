"""Identifiers and values as SDTM writes them (SDTMIG 3.x: ISO 8601, UTC, Y/N flags)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

import pycountry

from .. import records

# A row as Dataset-JSON text: the one encoding of every row, whoever builds it.
encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


# --- values --------------------------------------------------------------------------------------


def yn(value) -> str | None:
    return None if value is None else ("Y" if value else "N")


def iso_date(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.isoformat()


def dtc(value: datetime | None) -> str | None:
    """An SDTM --DTC date-time: ISO 8601 in UTC, to the second, without an offset."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def country_code(country: str) -> str:
    """ISO 3166-1 alpha-3 for a site's country ("China" -> "CHN"); the text itself when it is
    no country name or code pycountry knows."""
    try:
        return pycountry.countries.lookup(country.strip()).alpha_3
    except LookupError:
        return country


# --- datasets ------------------------------------------------------------------------------------


def _batches(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def scoped(form, user):
    """The form's records ``user`` may see; ``user`` None is the operator at the server's shell
    (the ``export_datasets`` command without ``--user``): every site."""
    return form.queryset() if user is None else records.records(form, user)


def _group(form, name: str):
    return next(group for group in form.children if group.name == name)
