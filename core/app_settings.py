"""An app's protocol settings: its documented defaults with the deployment's overrides (one
Django setting, a dict with the same keys) merged over them. An unknown key is refused rather
than ignored: a misspelt override would otherwise leave the default silently in force."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings as django_settings


def merged_settings(setting: str, defaults: Mapping) -> dict:
    """``defaults`` with the Django setting named ``setting`` merged over them."""
    overrides = getattr(django_settings, setting, {}) or {}
    unknown = set(overrides) - set(defaults)
    if unknown:
        raise ValueError(f"{setting} has unknown keys: {', '.join(sorted(unknown))}")
    return {**defaults, **overrides}
