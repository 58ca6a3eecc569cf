"""Numbers of the edit checks that are not the protocol's eligibility numbers (those stay in
``eligibility.settings``). A deployment overrides any of them with the Django setting
``EDIT_CHECK_SETTINGS`` (a dict with the same keys), never by editing a check."""

from __future__ import annotations

from django.conf import settings as django_settings

DEFAULTS: dict[str, int] = {
    # SUBJ-005: a consented subject still in screening after this many days gets a query.
    "screening_max_days": 28,
    # ELIG-002: the planned randomization date at most this many days after the CRF was saved.
    "planned_randomization_max_days": 28,
    # Saves of one subject within this many seconds run its checks once (the on-commit task
    # waits this long, so a burst of saves is checked together).
    "debounce_seconds": 5,
}


def edit_check_settings() -> dict[str, int]:
    overrides = getattr(django_settings, "EDIT_CHECK_SETTINGS", {}) or {}
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"EDIT_CHECK_SETTINGS has unknown keys: {', '.join(sorted(unknown))}")
    return {**DEFAULTS, **overrides}
