"""The SAE reporting clock: the one definition of its states, in Python and as a database filter.

A serious AE must reach the sponsor within ``REPORTING_WINDOW`` of the site becoming aware of it.
``state()`` reads one event's clock (the model, the pages); ``condition()`` is the same rule as a
query condition (the queryset, the admin filter, the "SAE reports due" page). A test holds the two
in agreement at every boundary.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import models
from django.db.models import F, Q

REPORTING_WINDOW = timedelta(hours=24)
DUE_SOON_WITHIN = timedelta(hours=6)  # "due soon": less than this left on the clock


class SaeClock(models.TextChoices):
    PENDING = "pending", "Pending"
    DUE_SOON = "due_soon", "Due soon"
    OVERDUE = "overdue", "Overdue"
    REPORTED = "reported", "Reported"
    REPORTED_LATE = "reported_late", "Reported late"


UNREPORTED = (SaeClock.PENDING, SaeClock.DUE_SOON, SaeClock.OVERDUE)


def due_at(site_aware_at: datetime | None) -> datetime | None:
    return None if site_aware_at is None else site_aware_at + REPORTING_WINDOW


def state(
    *, serious: bool, site_aware_at: datetime | None, reported_at: datetime | None, now: datetime
) -> SaeClock | None:
    """The clock of one event at ``now``; ``None`` for an event without one (not serious)."""
    due = due_at(site_aware_at) if serious else None
    if due is None:
        return None
    if reported_at is not None:
        return SaeClock.REPORTED_LATE if reported_at > due else SaeClock.REPORTED
    if now >= due:
        return SaeClock.OVERDUE
    return SaeClock.DUE_SOON if due - now <= DUE_SOON_WITHIN else SaeClock.PENDING


def condition(clock: SaeClock, now: datetime) -> Q:
    """The events whose clock is ``clock`` at ``now``, as a filter on AdverseEvent."""
    has_clock = Q(serious=True, site_aware_at__isnull=False)
    due = F("site_aware_at") + REPORTING_WINDOW
    started_before = now - REPORTING_WINDOW  # aware at or before this: the 24 hours are over
    conditions = {
        SaeClock.OVERDUE: Q(sae_reported_at__isnull=True, site_aware_at__lte=started_before),
        SaeClock.DUE_SOON: Q(
            sae_reported_at__isnull=True,
            site_aware_at__gt=started_before,
            site_aware_at__lte=started_before + DUE_SOON_WITHIN,
        ),
        SaeClock.PENDING: Q(
            sae_reported_at__isnull=True, site_aware_at__gt=started_before + DUE_SOON_WITHIN
        ),
        SaeClock.REPORTED_LATE: Q(sae_reported_at__gt=due),
        SaeClock.REPORTED: Q(sae_reported_at__lte=due),
    }
    return has_clock & conditions[clock]


def any_of(clocks, now: datetime) -> Q:
    result = Q(pk__in=[])
    for clock in clocks:
        result |= condition(clock, now)
    return result
