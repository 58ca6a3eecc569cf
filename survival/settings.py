"""Settings of the survival endpoints, with documented defaults.

The tumor assessment schedule (the missed-assessment rule of PFS) is the treatment app's
(``TREATMENT_SETTINGS``: every 6 weeks up to week 54, then every 9 weeks, ± 7 days): one
schedule for the calendar and the endpoints. A deployment overrides the keys below with the
Django setting ``SURVIVAL_SETTINGS`` (a dict merged over these):

* ``pfs_missed_assessments`` (2): a progression or death after this many missed tumor
  assessments censors PFS at the last adequate assessment (``None``: count every event; the
  sensitivity analysis).
* ``data_cutoff`` (None: today): the data cut-off date of the endpoints report and ADTTE.
"""

from __future__ import annotations

from core.app_settings import merged_settings
from treatment.settings import treatment_settings

from .endpoints import AssessmentSchedule

DEFAULTS: dict[str, object] = {
    "pfs_missed_assessments": 2,
    "data_cutoff": None,
}


def survival_settings() -> dict:
    return merged_settings("SURVIVAL_SETTINGS", DEFAULTS)


def assessment_schedule() -> AssessmentSchedule:
    """The tumor assessment schedule of the protocol, as the PFS censoring rule reads it."""
    treatment = treatment_settings()
    return AssessmentSchedule(
        first_interval_days=int(treatment["tumor_interval_weeks"]) * 7,
        switch_day=int(treatment["tumor_early_phase_weeks"]) * 7,
        later_interval_days=int(treatment["tumor_late_interval_weeks"]) * 7,
        window_days=int(treatment["tumor_window_days"]),
        missed=survival_settings()["pfs_missed_assessments"],
    )
