"""Reads of the dashboard: per site and study-wide figures over the sites the user may see
(``core.access`` through the selectors of the apps below). Every figure is read set-wise (one
grouped or aggregate query each): the page's number of SQL queries does not grow with the number
of subjects, adverse events or data queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import TruncMonth

from adverse_events.sae_clock import SaeClock
from adverse_events.selectors import SaeDueRow, sae_due_rows
from core.site_time import today_at
from queries import selectors as query_selectors
from randomization.arms import Arm
from randomization.selectors import RandomizationDate, visible_allocations
from subjects.models import Site, SubjectStatus
from subjects.selectors import visible_subjects

WAITING_LIST_LENGTH = 10


@dataclass(frozen=True)
class Scope:
    """The sites a dashboard shows: one of the user's sites (``site``), or all the user sees."""

    sites: list[Site]  # the active sites the user sees (the filter's choices)
    site: Site | None  # the chosen one; None: every site the user sees
    refused: str = ""  # the code asked for that the user may not see ("" when none)

    @property
    def study_wide(self) -> bool:
        return self.site is None


def scope_for(user, code: str = "") -> Scope:
    """The dashboard's scope for ``?site=<code>``: a site the user does not see is refused (its
    code kept for the page's message) and every visible site is shown instead."""
    sites = list(query_selectors.visible_sites(user))
    code = (code or "").strip()
    if not code:
        return Scope(sites, None)
    chosen = next((site for site in sites if site.code == code), None)
    return Scope(sites, chosen, refused="" if chosen else code)


def _narrow(queryset: QuerySet, scope: Scope, lookup: str) -> QuerySet:
    return queryset if scope.site is None else queryset.filter(**{lookup: scope.site.pk})


def subjects_in(user, scope: Scope) -> QuerySet:
    return _narrow(visible_subjects(user), scope, "site_id")


def allocations_in(user, scope: Scope) -> QuerySet:
    return _narrow(visible_allocations(user), scope, "subject__site_id")


def subjects_by_status(subjects: QuerySet) -> list[tuple[str, str, int]]:
    """(status, label, number of subjects) for every status, in the statuses' order: one
    grouped query."""
    counts = dict(
        subjects.order_by().values("status").annotate(n=Count("pk")).values_list("status", "n")
    )
    return [(value, label, counts.get(value, 0)) for value, label in SubjectStatus.choices]


def awaiting_decision(subjects: QuerySet, now: datetime) -> tuple[list, int]:
    """The consented subjects still in screening, the longest waiting first (at most
    ``WAITING_LIST_LENGTH``, each with ``days_waiting`` since consent, counted to ``now``'s date
    at the subject's site: the consent date is a site date), and how many there are in all
    (counted whether or not the list is full: the page's queries are the same at any size)."""
    waiting = subjects.filter(status=SubjectStatus.SCREENING, consent_date__isnull=False)
    first = waiting.select_related("site").order_by("consent_date", "pk")
    rows = list(first[:WAITING_LIST_LENGTH])
    for subject in rows:
        subject.days_waiting = (today_at(subject.site, now) - subject.consent_date).days
    return rows, waiting.count()


def open_queries_by_age(user, scope: Scope, now: datetime) -> list[tuple[str, int]]:
    """(age bucket, number of unresolved data queries): ``queries.selectors.AGE_BUCKETS``."""
    queries = _narrow(query_selectors.visible_queries(user), scope, "site_id")
    return query_selectors.unresolved_by_age(queries, now)


def sae_reports_due(user, scope: Scope, now: datetime) -> dict[str, list[SaeDueRow]]:
    """The unreported serious AEs whose report is overdue and due soon, the most urgent first."""
    rows = sae_due_rows(user, now)
    if scope.site is not None:
        rows = [row for row in rows if row.ae.subject.site_id == scope.site.pk]
    return {
        "overdue": [row for row in rows if row.clock == SaeClock.OVERDUE],
        "due_soon": [row for row in rows if row.clock == SaeClock.DUE_SOON],
    }


def _months(first: date, last: date) -> list[date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return months


def _per_month(queryset: QuerySet, day) -> dict[date, int]:
    """{first day of a month: rows whose date ``day`` (an expression of a date) falls in it}."""
    rows = (
        queryset.order_by()
        .annotate(dated=day)
        .filter(dated__isnull=False)
        .annotate(month=TruncMonth("dated"))
        .values("month")
        .annotate(n=Count("pk"))
        .values_list("month", "n")
    )
    found: dict[date, int] = {}
    for month, n in rows:
        key = month.date() if isinstance(month, datetime) else month
        found[key] = found.get(key, 0) + n
    return found


def enrollment_curve(subjects: QuerySet, allocations: QuerySet) -> list[dict]:
    """Per month, from the first consent to the last consent or randomization: the cumulative
    number of subjects consented and randomized (two grouped queries)."""
    consented = _per_month(subjects, F("consent_date"))
    # The randomization date (the site's date), not allocated_at's date in UTC: a subject
    # randomized in Shanghai on the morning of 1 March counts in March.
    randomized = _per_month(allocations, RandomizationDate(""))
    known = set(consented) | set(randomized)
    if not known:
        return []
    points, total_consented, total_randomized = [], 0, 0
    for month in _months(min(known), max(known)):
        total_consented += consented.get(month, 0)
        total_randomized += randomized.get(month, 0)
        points.append(
            {"month": month, "consented": total_consented, "randomized": total_randomized}
        )
    return points


def arm_balance(allocations: QuerySet) -> dict:
    """Randomized subjects per arm: per site (one grouped query) and their totals."""
    counts = {arm: Count("pk", filter=Q(arm=arm)) for arm in Arm.values}
    sites = []
    for row in (
        allocations.order_by()
        .values("subject__site__code")
        .annotate(**counts)
        .order_by("subject__site__code")
    ):
        per_arm = [row[arm] for arm in Arm.values]
        sites.append({"site": row["subject__site__code"], "counts": per_arm, "total": sum(per_arm)})
    totals = [sum(site["counts"][i] for site in sites) for i in range(len(Arm.values))]
    return {"arms": Arm.choices, "sites": sites, "totals": totals, "total": sum(totals)}
