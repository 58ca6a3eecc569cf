"""Cumulative dose and relative dose intensity (RDI): pure functions, no database.

The selectors turn records into ``IvAdministration`` / ``OralPeriod`` values and call these, so
every page and export derives the same figure. The formulas are in README ("Relative dose
intensity"); an RDI is ``None`` when nothing was given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

RDI_PLACES = Decimal("0.001")


@dataclass(frozen=True)
class IvAdministration:
    given_mg: Decimal
    administered: date | None
    weight_kg: Decimal | None = None


@dataclass(frozen=True)
class OralPeriod:
    daily_mg: Decimal
    start: date
    stop: date | None


def cumulative_iv_dose(doses: Iterable[IvAdministration]) -> Decimal:
    return sum((d.given_mg for d in doses), Decimal("0"))


def iv_rdi(
    doses: Iterable[IvAdministration],
    *,
    planned_per_cycle: Decimal,
    cycle_days: int,
    per_kg: bool = False,
) -> Decimal | None:
    """RDI of an IV drug; ``per_kg``: ``planned_per_cycle`` is in
    mg/kg and each dose is divided by its cycle's weight."""
    given = [d for d in doses if d.administered is not None and d.given_mg > 0]
    if not given:
        return None
    first = min(d.administered for d in given)
    last = max(d.administered for d in given)
    period_days = (last - first).days + cycle_days
    if per_kg:
        total = sum((d.given_mg / d.weight_kg for d in given), Decimal("0"))
    else:
        total = sum((d.given_mg for d in given), Decimal("0"))
    planned = Decimal(planned_per_cycle) * Decimal(period_days) / Decimal(cycle_days)
    return (total / planned).quantize(RDI_PLACES)


def _days(period: OralPeriod, as_of: date) -> int:
    stop = period.stop or as_of
    return max((stop - period.start).days + 1, 0)


def cumulative_oral_dose(periods: Iterable[OralPeriod], *, as_of: date) -> Decimal:
    return sum((p.daily_mg * _days(p, as_of) for p in periods), Decimal("0"))


def oral_rdi(periods: Iterable[OralPeriod], *, planned_daily_mg: Decimal, as_of: date):
    periods = list(periods)
    if not periods:
        return None
    first = min(p.start for p in periods)
    last = max(p.stop or as_of for p in periods)
    period_days = (last - first).days + 1
    if period_days <= 0:
        return None
    planned = Decimal(planned_daily_mg) * period_days
    return (cumulative_oral_dose(periods, as_of=as_of) / planned).quantize(RDI_PLACES)
