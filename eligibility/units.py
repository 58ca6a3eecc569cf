"""The units of the screening labs: one conversion table (``LABS``), pure and deterministic.

Sites enter labs as their laboratory reported them; the criteria and Child-Pugh use SI values,
so both are kept and the SI one is always computed here: value × factor, exact ``Decimal``
arithmetic, then rounded half up to the SI field's places. Unit codes are UCUM (stored and
exported); ``symbol`` is for people. The factors' sources are in README ("Eligibility CRF").
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

# The value as reported: up to 8 digits before the decimal point, 2 after (a platelet count in
# cells/µL reaches 2 000 000; a creatinine in mg/dL needs 0.85).
REPORTED_DIGITS = 10
REPORTED_PLACES = 2


class UnknownUnit(ValueError):
    """The unit is not one the lab accepts."""


@dataclass(frozen=True)
class Unit:
    code: str  # UCUM code: stored and exported
    symbol: str  # as people read it ("" for a ratio)
    factor: Decimal  # value in this unit × factor = value in the SI unit

    @property
    def label(self) -> str:
        return self.symbol or "no unit (ratio)"


@dataclass(frozen=True)
class Lab:
    name: str  # the CRF field of the SI value
    si_places: int  # decimal places of the SI value
    units: tuple[Unit, ...]  # the SI unit first

    @property
    def si_unit(self) -> Unit:
        return self.units[0]

    def unit(self, code: str) -> Unit:
        for unit in self.units:
            if unit.code == code:
                return unit
        accepted = ", ".join(u.label for u in self.units)
        raise UnknownUnit(f"{code!r} is not a unit of {self.name}: use {accepted}.")

    def accepts(self, code: str) -> bool:
        return any(unit.code == code for unit in self.units)

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(unit.code, unit.label) for unit in self.units]


ONE = Decimal(1)
GIGA_PER_L = Unit("10*9/L", "× 10⁹/L", ONE)
KILO_PER_UL = Unit("10*3/uL", "× 10³/µL", ONE)
PER_UL = Unit("/uL", "cells/µL", Decimal("0.001"))
G_PER_L = Unit("g/L", "g/L", ONE)
G_PER_DL = Unit("g/dL", "g/dL", Decimal(10))
UMOL_PER_L = Unit("umol/L", "µmol/L", ONE)
U_PER_L = Unit("U/L", "U/L", ONE)
UKAT_PER_L = Unit("ukat/L", "µkat/L", Decimal(60))
CELL_COUNT = (GIGA_PER_L, KILO_PER_UL, PER_UL)
ENZYME = (U_PER_L, UKAT_PER_L)
PROTEIN = (G_PER_L, G_PER_DL)

# The one conversion table, in the order of the CRF.
LABS: dict[str, Lab] = {
    lab.name: lab
    for lab in (
        Lab("anc", 2, CELL_COUNT),
        Lab("platelets", 1, CELL_COUNT),
        Lab("hemoglobin", 1, PROTEIN),
        Lab("total_bilirubin", 1, (UMOL_PER_L, Unit("mg/dL", "mg/dL", Decimal("17.1")))),
        Lab("alt", 1, ENZYME),
        Lab("ast", 1, ENZYME),
        Lab("creatinine", 1, (UMOL_PER_L, Unit("mg/dL", "mg/dL", Decimal("88.4")))),
        Lab("creatinine_clearance", 1, (Unit("mL/min", "mL/min", ONE),)),
        Lab("inr", 2, (Unit("1", "", ONE),)),
        Lab("albumin", 1, PROTEIN),
    )
}
LAB_NAMES: tuple[str, ...] = tuple(LABS)


def reported_field(name: str) -> str:
    """The CRF field of the value as reported: ``total_bilirubin_reported``."""
    return f"{name}_reported"


def unit_field(name: str) -> str:
    """The CRF field of the reported unit: ``total_bilirubin_unit``."""
    return f"{name}_unit"


REPORTED_FIELDS: tuple[str, ...] = tuple(reported_field(n) for n in LAB_NAMES)
UNIT_FIELDS: tuple[str, ...] = tuple(unit_field(n) for n in LAB_NAMES)


def as_decimal(value) -> Decimal | None:
    """``value`` as a finite Decimal, or None when it is not a number."""
    if value is None or value == "":
        return None
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def to_si(name: str, value, code: str) -> Decimal:
    """``value`` reported in unit ``code``, in the SI unit of lab ``name``, rounded half up to the
    SI field's decimal places. Raises ``UnknownUnit`` for a unit the lab does not accept and
    ``ValueError`` for a value that is not a number."""
    lab = LABS[name]
    unit = lab.unit(code)
    number = as_decimal(value)
    if number is None:
        raise ValueError(f"{value!r} is not a number.")
    return (number * unit.factor).quantize(Decimal(1).scaleb(-lab.si_places), ROUND_HALF_UP)


def from_si(name: str, si_value, code: str) -> Decimal:
    """An SI value expressed in unit ``code``, rounded half up to the reported value's decimal
    places (for demo data and examples; the CRF converts the other way)."""
    unit = LABS[name].unit(code)
    quantum = Decimal(1).scaleb(-REPORTED_PLACES)
    return (Decimal(si_value) / unit.factor).quantize(quantum, ROUND_HALF_UP)


def range_in(name: str, code: str, si_low: Decimal, si_high: Decimal) -> tuple[Decimal, Decimal]:
    """The SI range ``si_low``-``si_high`` of lab ``name`` in unit ``code``, rounded inward to the
    reported value's decimal places: every value in it converts into the SI range."""
    unit = LABS[name].unit(code)
    quantum = Decimal(1).scaleb(-REPORTED_PLACES)
    low = (Decimal(si_low) / unit.factor).quantize(quantum, ROUND_CEILING)
    high = (Decimal(si_high) / unit.factor).quantize(quantum, ROUND_FLOOR)
    return low, high


def plain(number: Decimal) -> str:
    """A Decimal as people write it: no exponent, no trailing zeros (``58.47``, ``2000000``)."""
    text = format(number, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
