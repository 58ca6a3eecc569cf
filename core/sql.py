"""SQL text, for the few places that write SQL text rather than ORM queries (the exports'
database-built rows, the audit triggers): one quoting rule, and the spellings PostgreSQL and
SQLite do not share, which each export format extends with its own."""

from __future__ import annotations

from typing import TypeVar


def literal(text: str, *, with_params: bool = True) -> str:
    """``text`` as a standard SQL string literal. ``with_params``: the query runs with
    parameters, so the driver reads ``%`` as a placeholder and it is doubled."""
    quoted = "'" + text.replace("'", "''") + "'"
    return quoted.replace("%", "%%") if with_params else quoted


class PostgreSQL:
    """A value's text as the exports write it in Python (the queries run with parameters)."""

    def text(self, expr: str) -> str:
        return f"({expr})::text"

    def decimal(self, expr: str, places: int) -> str:
        """A decimal column's text, to its ``places`` (a numeric keeps its scale)."""
        return self.text(expr)

    def utc_iso(self, expr: str) -> str:
        """A timestamp's ``isoformat()`` in UTC with a Z: microseconds only when there are some."""
        iso = f"to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return f"replace({iso}, '.000000Z', 'Z')"

    def ordered(self, sql: str, alias: str, order: str) -> str:
        """``sql``'s rows as ``alias``, for an aggregate ``joined`` in ``order``."""
        return f"({sql}) {alias}"

    def joined(self, expr: str, separator: str, order: str) -> str:
        """A group's texts joined in ``order`` (on SQLite: the order of rows ``ordered``)."""
        return f"string_agg({expr}, {separator} ORDER BY {order})"


class SQLite(PostgreSQL):
    """SQLite 3.40: decimals stored as REAL, datetimes as UTC text, no ordered aggregate (3.44)."""

    def text(self, expr: str) -> str:
        return f"CAST({expr} AS TEXT)"

    def decimal(self, expr: str, places: int) -> str:
        # Django reads the REAL back to the field's places; printf() writes NULL as "0".
        written = f"printf({literal(f'%.{places}f')}, {expr})"
        return f"(CASE WHEN {expr} IS NOT NULL THEN {written} END)"

    def utc_iso(self, expr: str) -> str:
        # stored as str(datetime) in UTC: "2025-03-04 05:06:07[.123456]"
        return f"replace({expr}, ' ', 'T') || 'Z'"

    def ordered(self, sql: str, alias: str, order: str) -> str:
        # group_concat() takes the rows in the order of an ordered subquery
        return f"(SELECT * FROM ({sql}) {alias} ORDER BY {order}) {alias}"

    def joined(self, expr: str, separator: str, order: str) -> str:
        return f"group_concat({expr}, {separator})"


Spelling = TypeVar("Spelling", bound=PostgreSQL)


def dialect_for(connection, postgresql: Spelling, sqlite: Spelling) -> Spelling:
    """Of a format's two spellings, the one of ``connection``'s database."""
    return sqlite if connection.vendor == "sqlite" else postgresql
