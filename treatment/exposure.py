"""Derived exposure figures: cumulative dose and relative dose intensity (pure functions).

The selectors turn the records into ``IvAdministration`` / ``OralPeriod`` values and call these;
no database access here.

Cumulative dose: the sum of the doses given, in mg. For sorafenib, each period's days (start to
stop inclusive; an ongoing period counts to ``as_of``) × the level's average daily dose (800,
400, 200 for 400 mg every other day, 0 held).

Relative dose intensity (RDI), given over planned over the treatment period:

* IV drug (cycles of ``cycle_days``): the treatment period runs from the first administration to
  the last one + ``cycle_days`` (the last dose covers its cycle), D days. The planned amount
  over it is one planned dose per ``cycle_days``: ``planned_per_cycle × D / cycle_days``.
  ``RDI = Σ given / (planned_per_cycle × D / cycle_days)``. Bevacizumab is dosed per kg, so its
  doses are normalised by each cycle's weight: ``Σ (given_i / weight_i) / (15 × D / 21)``.
  Toripalimab: ``Σ given_i / (240 × D / 21)``. A delayed cycle lengthens D, a reduced or
  skipped dose lowers the sum: both lower the RDI.
* Sorafenib: the period runs from the first start to the last stop (``as_of`` while ongoing),
  D days inclusive, held days included: ``RDI = cumulative dose / (800 × D)``.

An RDI is ``None`` when nothing was given (no period).
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
    """RDI of an IV drug (see the module docstring); ``per_kg``: ``planned_per_cycle`` is in
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
