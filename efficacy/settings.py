"""Protocol settings of the RECIST v1.1 best-overall-response derivation. A deployment overrides
any of them with the Django setting ``EFFICACY_SETTINGS`` (a dict with the same keys), never by
editing ``efficacy.recist``.

* ``confirmation_days`` (28): a CR or PR counts for the best overall response only when a later
  assessment at least this many days after it confirms it (RECIST 1.1: "no less than 4 weeks").
* ``sd_min_days`` (42): stable disease counts for the best overall response only at an
  assessment at least this many days after randomization (RECIST 1.1 lets the protocol choose,
  "generally 6-8 weeks"; six weeks is the protocol's first scheduled assessment). A protocol that
  allows the first scan's visit window (e.g. -7 days) lowers it accordingly.
"""

from __future__ import annotations

from core.app_settings import merged_settings

from .recist import CONFIRMATION_DAYS, SD_MIN_DAYS

DEFAULTS: dict[str, int] = {
    "confirmation_days": CONFIRMATION_DAYS,
    "sd_min_days": SD_MIN_DAYS,
}


def efficacy_settings() -> dict[str, int]:
    return merged_settings("EFFICACY_SETTINGS", DEFAULTS)
