"""The registry of the edit checks: every app's, joined in layer order.

Each check has a stable code, a sentence a site coordinator understands, the model and field(s)
it points at, a severity, and a finder (``core.edit_checks``). The checks live in the app that
owns the data they look at, declared in its ``contributions`` module (``edit_checks``); this
module joins them for the sweep, the query pages, the admin and the exports.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from core import registry
from core.edit_checks import EditCheck, Scope, Severity, Violation
from core.errors import DomainError

__all__ = ["CHECKS", "CHECKS_BY_CODE", "EditCheck", "Scope", "Severity", "Violation"]

# Joined on first use (``__getattr__``), not at import: this app's own contributions import
# modules that import this one, and the registry reads every app's contributions.
CHECKS: tuple[EditCheck, ...]
CHECKS_BY_CODE: dict[str, EditCheck]


def _join() -> None:
    global CHECKS, CHECKS_BY_CODE
    joined = tuple(registry.edit_checks())
    by_code = {check.code: check for check in joined}
    assert len(by_code) == len(joined), "two edit checks share a code"
    CHECKS, CHECKS_BY_CODE = joined, by_code


def __getattr__(name: str) -> Any:
    if name in {"CHECKS", "CHECKS_BY_CODE"}:
        _join()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def checks_by_code() -> dict[str, EditCheck]:
    """Every check by its code (``CHECKS_BY_CODE``, joined on first use)."""
    if "CHECKS_BY_CODE" not in globals():
        _join()
    return CHECKS_BY_CODE


class UnknownCheck(DomainError):
    pass


def checks_named(codes: Iterable[str] | None) -> tuple[EditCheck, ...]:
    """The checks with these codes (all when ``codes`` is None); unknown codes are refused."""
    by_code = checks_by_code()
    if codes is None:
        return CHECKS
    codes = [code.strip().upper() for code in codes]
    unknown = [code for code in codes if code not in by_code]
    if unknown:
        known = ", ".join(by_code)
        raise UnknownCheck(f"There is no edit check {', '.join(unknown)}. The checks: {known}.")
    return tuple(by_code[code] for code in codes)
