"""Protocol settings of the visit schedule and of study drug dosing, with documented defaults.

The registry summary gives the trial's doses (toripalimab 240 mg IV and bevacizumab 15 mg/kg IV
every 3 weeks; sorafenib 400 mg twice daily) and 21-day cycles, but not the visit windows nor the
tumor assessment and follow-up intervals. The defaults below are those of comparable first-line
HCC phase III trials (IMbrave150-like): **defaults to be confirmed against the protocol's schedule
of assessments**. A deployment overrides any of them with the Django setting
``TREATMENT_SETTINGS`` (a dict with the same keys, merged over these), never by editing code.
"""

from __future__ import annotations

from decimal import Decimal

from core.app_settings import merged_settings

from .schedule import ScheduleSettings

DEFAULTS: dict[str, object] = {
    # --- visit schedule (treatment.schedule) -------------------------------------------------
    # Cycle N day 1 = randomization date + cycle_days × (N - 1), ± cycle_window_days.
    "cycle_days": 21,
    "cycle_window_days": 3,
    # Tumor assessments (RECIST 1.1): every 6 weeks from randomization up to week 54, then every
    # 9 weeks, ± tumor_window_days.
    "tumor_interval_weeks": 6,
    "tumor_early_phase_weeks": 54,
    "tumor_late_interval_weeks": 9,
    "tumor_window_days": 7,
    # Safety follow-up 30 and 90 days after the last dose of study drug, ± safety_window_days.
    "safety_follow_up_days": (30, 90),
    "safety_window_days": 7,
    # Survival follow-up every 12 weeks after the end of treatment, ± survival_window_days.
    "survival_interval_weeks": 12,
    "survival_window_days": 14,
    # --- dosing (treatment.services / treatment.exposure) ------------------------------------
    "toripalimab_dose_mg": Decimal("240"),
    "bevacizumab_dose_mg_per_kg": Decimal("15"),
    "sorafenib_daily_dose_mg": Decimal("800"),
    # A given IV dose farther than this from the planned dose (percent of the planned dose) needs
    # a reason (service) and is queried when it has none (edit check TRT-002).
    "dose_tolerance_percent": Decimal("10"),
    # A given IV dose above this multiple of the planned dose cannot be right (a unit typo).
    "max_dose_multiple": Decimal("2"),
    # Body weight plausible at entry, kg.
    "weight_min_kg": Decimal("25"),
    "weight_max_kg": Decimal("250"),
}


def treatment_settings() -> dict:
    """The defaults with the deployment's ``TREATMENT_SETTINGS`` merged over them."""
    return merged_settings("TREATMENT_SETTINGS", DEFAULTS)


def schedule_settings() -> ScheduleSettings:
    values = treatment_settings()
    return ScheduleSettings(
        **{name: values[name] for name in ScheduleSettings.__dataclass_fields__}
    )
