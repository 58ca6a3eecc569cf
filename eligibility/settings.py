"""Every threshold the eligibility criteria use, in one place.

``PROTOCOL`` holds the protocol text's numbers (they change only with an amendment);
``LAB_LIMITS`` are documented defaults for "adequate organ function", to be confirmed against the
protocol's lab table and overridden by ``ELIGIBILITY_SETTINGS``, never by editing criteria code;
``PLAUSIBLE_RANGES`` are not limits but refuse impossible values at entry (in SI units).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings as django_settings

from . import units

PROTOCOL: dict[str, object] = {
    # IN01: age at consent, inclusive both ends.
    "age_min": 18,
    "age_max": 75,
    # IN03: BCLC stages accepted.
    "bclc_stages": ("B", "C"),
    # IN05: at least this many RECIST 1.1 measurable lesions.
    "measurable_lesions_min": 1,
    # IN06: Child-Pugh class required (class A = score 5-6, see CHILD_PUGH).
    "child_pugh_class": "A",
    # IN07: ECOG performance status accepted.
    "ecog_accepted": (0, 1),
    # IN08: predicted life expectancy, weeks.
    "life_expectancy_min_weeks": 12,
    # IN10: HBV DNA must be below this (IU/mL); HCV RNA above this (copies/mL) excludes when
    # anti-HCV is positive; HCV RNA above this counts as "HCV RNA positive" for co-infection.
    "hbv_dna_below_iu_ml": 500,
    "hcv_rna_max_copies_ml": 1000,
    "hcv_rna_positive_above_copies_ml": 0,
    # IN11: serum pregnancy test within this many days before randomization (inclusive).
    "pregnancy_test_window_days": 7,
    # EX03: windows before randomization (days, inclusive).
    "local_therapy_window_days": 28,
    "bone_radiotherapy_window_days": 14,
    "chinese_medicine_window_days": 14,
    # EX06: gastrointestinal hemorrhage within this many calendar months.
    "gi_hemorrhage_window_months": 6,
    # EX11: medium or major surgery within this many days.
    "major_surgery_window_days": 28,
    # EX14: live vaccine within this many days.
    "live_vaccine_window_days": 30,
}

# At entry: a planned randomization date at most this many days ahead of today.
PLANNED_RANDOMIZATION_MAX_DAYS_AHEAD = 28


def _bilirubin(mg_dl: Decimal) -> dict[str, Decimal]:
    return {"mg/dL": mg_dl, "umol/L": units.to_si("total_bilirubin", mg_dl, "mg/dL")}


# Total bilirubin, in mg/dL and µmol/L (README, "Eligibility CRF"): the one table of the
# Child-Pugh cut-offs and the IN09 limit.
BILIRUBIN_ULN_MG_DL = Decimal("1.0")
BILIRUBIN: dict[str, dict[str, Decimal]] = {
    "uln": _bilirubin(BILIRUBIN_ULN_MG_DL),  # 17.1 µmol/L
    "child_pugh_2_from": _bilirubin(Decimal("2")),  # 34.2 µmol/L
    "child_pugh_3_above": _bilirubin(Decimal("3")),  # 51.3 µmol/L
    "in09_max": _bilirubin(3 * BILIRUBIN_ULN_MG_DL),  # 3 × ULN: 51.3 µmol/L
}

# Child-Pugh points (standard table, SI units).
CHILD_PUGH: dict[str, object] = {
    # total bilirubin, µmol/L (BILIRUBIN): < 34.2 → 1 point, 34.2-51.3 → 2, > 51.3 → 3
    # (< 2, 2-3, > 3 mg/dL)
    "bilirubin_2_from": BILIRUBIN["child_pugh_2_from"]["umol/L"],
    "bilirubin_3_above": BILIRUBIN["child_pugh_3_above"]["umol/L"],
    # albumin, g/L: > 35 → 1 point, 28-35 → 2, < 28 → 3
    "albumin_2_at_most": Decimal("35"),
    "albumin_3_below": Decimal("28"),
    # INR: < 1.7 → 1 point, 1.7-2.3 → 2, > 2.3 → 3
    "inr_2_from": Decimal("1.7"),
    "inr_3_above": Decimal("2.3"),
    # class by score: A 5-6, B 7-9, C 10-15
    "class_a_max": 6,
    "class_b_max": 9,
}

# IN09 "adequate hematologic and end-organ function": the usual limits of first-line HCC
# immunotherapy trials (IMbrave150-like), ULN of a typical Chinese hospital laboratory; defaults.
# "min": the value must be at least this; "max": at most this (both inclusive).
LAB_LIMITS: dict[str, dict] = {
    "anc": {"min": Decimal("1.5"), "basis": "ANC ≥ 1.5 × 10⁹/L"},
    "platelets": {"min": Decimal("75"), "basis": "platelets ≥ 75 × 10⁹/L"},
    "hemoglobin": {"min": Decimal("90"), "basis": "hemoglobin ≥ 90 g/L"},
    "total_bilirubin": {
        "max": BILIRUBIN["in09_max"]["umol/L"],
        "basis": "total bilirubin ≤ 3 × ULN (ULN 17.1 µmol/L = 1.0 mg/dL): ≤ 51.3 µmol/L",
    },
    "alt": {"max": Decimal("200"), "basis": "ALT ≤ 5 × ULN (ULN 40 U/L)"},
    "ast": {"max": Decimal("200"), "basis": "AST ≤ 5 × ULN (ULN 40 U/L)"},
    # Renal function: creatinine ≤ 1.5 × ULN (ULN 106 µmol/L) OR creatinine clearance ≥ 50 mL/min.
    "creatinine": {"max": Decimal("159"), "basis": "creatinine ≤ 1.5 × ULN (ULN 106 µmol/L)"},
    "creatinine_clearance": {"min": Decimal("50"), "basis": "creatinine clearance ≥ 50 mL/min"},
    "inr": {"max": Decimal("2.0"), "basis": "INR ≤ 2.0"},
    "albumin": {"min": Decimal("28"), "basis": "albumin ≥ 28 g/L"},
}
# Screening labs must be this recent on the reference date (protocol silent: a setting).
LAB_MAX_AGE_DAYS = 14

# Values outside these cannot be right (SI units): refused at entry, in any unit through its factor.
PLAUSIBLE_RANGES: dict[str, tuple[Decimal, Decimal, str]] = {
    "anc": (Decimal("0"), Decimal("100"), "× 10⁹/L"),
    "platelets": (Decimal("0"), Decimal("2000"), "× 10⁹/L"),
    "hemoglobin": (Decimal("20"), Decimal("250"), "g/L"),
    "total_bilirubin": (Decimal("0"), Decimal("1000"), "µmol/L"),
    "alt": (Decimal("0"), Decimal("10000"), "U/L"),
    "ast": (Decimal("0"), Decimal("10000"), "U/L"),
    "creatinine": (Decimal("10"), Decimal("2000"), "µmol/L"),
    "creatinine_clearance": (Decimal("0"), Decimal("300"), "mL/min"),
    "inr": (Decimal("0.5"), Decimal("10"), ""),
    "albumin": (Decimal("5"), Decimal("70"), "g/L"),
}


def plausible_range(name: str, code: str) -> tuple[Decimal, Decimal]:
    """The plausible range of lab ``name`` reported in unit ``code``: ``PLAUSIBLE_RANGES`` through
    the unit's factor, rounded inward (``units.range_in``)."""
    low, high, _ = PLAUSIBLE_RANGES[name]
    return units.range_in(name, code, low, high)


def protocol() -> dict:
    """The protocol numbers, with any deployment overrides of ``ELIGIBILITY_SETTINGS``."""
    overrides = getattr(django_settings, "ELIGIBILITY_SETTINGS", {}) or {}
    return {**PROTOCOL, **overrides.get("protocol", {})}


def lab_limits() -> dict[str, dict]:
    overrides = getattr(django_settings, "ELIGIBILITY_SETTINGS", {}) or {}
    merged = {k: dict(v) for k, v in LAB_LIMITS.items()}
    for key, value in overrides.get("lab_limits", {}).items():
        merged.setdefault(key, {}).update(value)
    return merged


def lab_max_age_days() -> int:
    overrides = getattr(django_settings, "ELIGIBILITY_SETTINGS", {}) or {}
    return int(overrides.get("lab_max_age_days", LAB_MAX_AGE_DAYS))
