"""Keyset (cursor) pagination for the exports: a page is "the rows after this position" in a
total order, never an offset, so a page never shifts while a large pull runs and the database
reads one index range per page whatever the page number.

* The order is one or more keys (``Key``: an ORM path, ascending or descending, nullable or
  not) ending with the primary key, so it is total. Nullable keys sort their nulls last (first
  when walking backwards).
* A cursor holds the position (the keys' values of the row it points after), the direction and
  the order it was made for. It is signed (``django.core.signing``, the site's secret key): a
  cursor that was changed, cut, made up or made for another ordering is a 400 with a sentence.
* ``encode_cursor`` / ``decode_cursor`` are shared with the audit trail and the deletions feed,
  which page over other orders the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from operator import and_, or_

from django.core import signing
from django.db.models import F, Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

from . import params

SALT = "exports.cursor"
BAD_CURSOR = (
    "This cursor is not valid: it was changed, cut or made for another endpoint. Follow the "
    "next and previous links as given, or start again without a cursor."
)


# --- cursors -------------------------------------------------------------------------------------


def _pack(value):
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _unpack(value):
    if isinstance(value, dict):
        (tag, text), *_ = value.items()
        return {"t": datetime.fromisoformat, "d": date.fromisoformat, "n": Decimal}[tag](text)
    return value


@dataclass(frozen=True)
class Cursor:
    order: str  # what the position is a position in (endpoint and ordering)
    position: tuple
    backwards: bool = False


def encode_cursor(cursor: Cursor) -> str:
    payload = {
        "o": cursor.order,
        "p": [_pack(v) for v in cursor.position],
        "b": int(cursor.backwards),
    }
    return signing.dumps(payload, salt=SALT, compress=True)


def decode_cursor(text: str, order: str) -> Cursor:
    """The cursor ``text`` of a page in ``order``, or a 400 with a sentence."""
    try:
        payload = signing.loads(text, salt=SALT)
        cursor = Cursor(
            payload["o"], tuple(_unpack(v) for v in payload["p"]), bool(payload.get("b"))
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError, ArithmeticError):
        raise ValidationError({"cursor": [BAD_CURSOR]}) from None
    if cursor.order != order:
        raise ValidationError(
            {
                "cursor": [
                    "This cursor was made for another ordering or endpoint: keep the ordering "
                    "of the pull that gave it, or start again without a cursor."
                ]
            }
        )
    return cursor


# --- keys ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    path: str  # ORM path ("subject__site__code", "pk")
    descending: bool = False
    nullable: bool = False

    @property
    def alias(self) -> str:
        return "pk" if self.path == "pk" else "_key_" + self.path.replace("__", "_x_")

    def expression(self, backwards: bool):
        descending = self.descending != backwards
        field = F(self.path)
        if not self.nullable:
            return field.desc() if descending else field.asc()
        # nulls last walking forwards, first walking backwards (the same order, reversed)
        nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
        return field.desc(**nulls) if descending else field.asc(**nulls)

    def beyond(self, value, backwards: bool) -> Q | None:
        """Rows past ``value`` on this key alone (None: none can be)."""
        descending = self.descending != backwards
        nulls_last = not backwards
        if value is None:
            return None if nulls_last else Q(**{f"{self.path}__isnull": False})
        condition = Q(**{f"{self.path}__{'lt' if descending else 'gt'}": value})
        if self.nullable and nulls_last:
            condition |= Q(**{f"{self.path}__isnull": True})
        return condition

    def equal(self, value) -> Q:
        if value is None:
            return Q(**{f"{self.path}__isnull": True})
        return Q(**{self.path: value})


def after(keys: Sequence[Key], position: Sequence, backwards: bool) -> Q | None:
    """The rows after ``position`` in the order of ``keys`` (before it, ``backwards``).

    The alternatives ("past the first key, or equal to it and past the second"...) are ANDed
    with the first key's own bound, the same rows said so that the database reads one range
    of an index on that key instead of filtering every row before the position."""
    alternatives = []
    for i, key in enumerate(keys):
        beyond = key.beyond(position[i], backwards)
        if beyond is None:
            continue
        same = [keys[j].equal(position[j]) for j in range(i)]
        alternatives.append(reduce(and_, [*same, beyond]))
    if not alternatives:
        return None
    condition = reduce(or_, alternatives)
    first, value = keys[0], position[0]
    if len(alternatives) > 1 and not first.nullable and value is not None:
        bound = "lte" if first.descending != backwards else "gte"
        condition = Q(**{f"{first.path}__{bound}": value}) & condition
    return condition


def after_merged(
    label: str, position: Sequence, backwards: bool, *, date_field: str, key_field: str
) -> Q:
    """Rows of the source ``label`` after ``position`` (date, source label, key) in a feed
    merged from several sources in the order (date, source label, key): the audit trail's
    history models, the deletions' exports. Before it, ``backwards``.

    The date's own bound comes first: the database reads the source's date index from the
    position on, instead of filtering every row before it."""
    at, at_label, at_key = position
    past, same = ("lt", "lte") if backwards else ("gt", "gte")
    if label == at_label:
        return Q(**{f"{date_field}__{same}": at}) & (
            Q(**{f"{date_field}__{past}": at})
            | Q(**{date_field: at, f"{key_field}__{past}": at_key})
        )
    later_label = label > at_label if not backwards else label < at_label
    return Q(**{f"{date_field}__{same if later_label else past}": at})


def ordered(queryset: QuerySet, keys: Sequence[Key], backwards: bool = False) -> QuerySet:
    annotations = {k.alias: F(k.path) for k in keys if k.path != "pk"}
    return queryset.annotate(**annotations).order_by(*(k.expression(backwards) for k in keys))


def position_of(record, keys: Sequence[Key]) -> tuple:
    return tuple(getattr(record, key.alias) for key in keys)


# --- the pagination ------------------------------------------------------------------------------


class KeysetPagination(BasePagination):
    """``?page_size=`` (1 to ``max_page_size``) and ``?cursor=``: the next and previous links."""

    page_size = 100
    max_page_size = 1000
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def page_size_of(self, request) -> int:
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        return params.parse_page_size(text, self.max_page_size)

    def cursor_of(self, request, order: str) -> Cursor | None:
        text = request.query_params.get(self.cursor_query_param)
        return None if text is None else decode_cursor(text, order)

    def paginate_keyset(self, queryset: QuerySet, request, keys: Sequence[Key], order: str):
        """One page of ``queryset`` in the order of ``keys`` (ending with the primary key)."""
        self.request = request
        size = self.page_size_of(request)
        cursor = self.cursor_of(request, order)
        backwards = bool(cursor and cursor.backwards)
        rows = ordered(queryset, keys, backwards)
        if cursor is not None:
            condition = after(keys, cursor.position, backwards)
            rows = rows.filter(condition) if condition is not None else rows.none()
        page = list(rows[: size + 1])
        more = len(page) > size
        page = page[:size]
        if backwards:
            page.reverse()
        self.set_links(
            order,
            first=position_of(page[0], keys) if page else None,
            last=position_of(page[-1], keys) if page else None,
            cursor=cursor,
            more=more,
        )
        return page

    def set_links(self, order: str, *, first, last, cursor: Cursor | None, more: bool):
        """The next and previous links of a page whose first and last rows are at ``first`` and
        ``last`` (None: the page is empty), reached through ``cursor``, ``more`` rows beyond."""
        self.next_cursor = self.previous_cursor = None
        backwards = bool(cursor and cursor.backwards)
        forward_more = more if not backwards else True
        backward_more = more if backwards else cursor is not None
        if last is None and cursor is not None:  # an empty page: both ways from where it was
            first = last = cursor.position
            forward_more = backwards
            backward_more = not backwards
        if forward_more and last is not None:
            self.next_cursor = Cursor(order, tuple(last))
        if backward_more and first is not None:
            self.previous_cursor = Cursor(order, tuple(first), backwards=True)

    def link(self, cursor: Cursor | None) -> str | None:
        if cursor is None:
            return None
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, encode_cursor(cursor))

    def get_paginated_response(self, data):
        return Response(
            {
                "next": self.link(self.next_cursor),
                "previous": self.link(self.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["results"],
            "description": "A keyset page: follow next (previous) to the end; there is no count "
            "(it would read every row of the list on every page).",
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page (null: this is the last).",
                },
                "previous": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The page before (null: this is the first).",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "The cursor of a page, as the next and previous links give it "
                "(signed: any other value is a 400).",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {self.max_page_size} "
                f"(default {self.page_size}).",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page_size},
            },
        ]
