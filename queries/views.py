"""Site pages of the data queries (to be completed)."""

from __future__ import annotations


def subject_panel(request, subject):
    """The queries panel of the subject page (``core.panels``)."""
    from . import selectors

    return "queries/_subject_panel.html", {
        "subject": subject,
        "queries": selectors.subject_queries(subject),
    }


def record_field_flags(request, record) -> dict:
    return {}
