"""SQL text literals, for the few places that write SQL text rather than ORM queries (the
exports' database-built rows, the audit triggers): one quoting rule for all of them."""

from __future__ import annotations


def literal(text: str, *, with_params: bool = True) -> str:
    """``text`` as a standard SQL string literal. ``with_params``: the query runs with
    parameters, so the driver reads ``%`` as a placeholder and it is doubled."""
    quoted = "'" + text.replace("'", "''") + "'"
    return quoted.replace("%", "%%") if with_params else quoted
