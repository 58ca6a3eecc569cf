"""Reads of data queries, scoped through ``core.access``: pages, admin, API and reports read
through these; ``services`` and ``sweep`` write."""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    Model,
    Prefetch,
    Q,
    QuerySet,
)
from django.http import Http404
from django.shortcuts import get_object_or_404

from core import access
from core.audit import HIDDEN_VALUE
from subjects.models import Site

from .models import AWAITING_SITE, UNRESOLVED, DataQuery, QueryMessage, QueryStatus


def visible_queries(user) -> QuerySet:
    return access.scope_to_user(
        DataQuery.objects.select_related("subject", "site", "content_type", "raised_by"), user
    )


def with_thread(queries: QuerySet) -> QuerySet:
    return queries.prefetch_related(
        Prefetch("thread", queryset=QueryMessage.objects.select_related("author").order_by("at"))
    )


def subject_queries(subject) -> QuerySet:
    """The subject's queries: unresolved first (no closing time), then newest first."""
    return (
        DataQuery.objects.filter(subject=subject)
        .select_related("content_type", "raised_by")
        .order_by(F("closed_at").desc(nulls_first=True), "-opened_at")
    )


def unresolved_on(record) -> QuerySet:
    """The unresolved queries about one record (its fields and the record as a whole)."""
    return DataQuery.objects.filter(
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        status__in=UNRESOLVED,
    ).order_by("opened_at", "pk")


# --- pages: the inbox, one query, one record -----------------------------------------------------

# What the site pages call a status filter: the site's turn (open, reopened) or data management's.
INBOX_FILTERS = {
    "site": ("Awaiting the site (open, reopened)", AWAITING_SITE),
    "answered": ("Answered: awaiting data management", (QueryStatus.ANSWERED,)),
}


def visible_query(user, pk: int) -> DataQuery:
    """One query with its thread, if the user may see it: another site's query is a 404."""
    return get_object_or_404(with_thread(visible_queries(user)), pk=pk)


def inbox(user, *, site_id: int | None = None, status: str = "") -> QuerySet:
    """The unresolved queries of the user's sites, oldest first; narrowed to one site and to the
    side whose turn it is (``INBOX_FILTERS``)."""
    queries = visible_queries(user).filter(status__in=UNRESOLVED)
    if site_id is not None:
        queries = queries.filter(site_id=site_id)
    if status in INBOX_FILTERS:
        queries = queries.filter(status__in=INBOX_FILTERS[status][1])
    return queries.order_by("opened_at", "pk")


def visible_sites(user) -> QuerySet:
    """The active sites the user sees (the pages' site filters)."""
    return access.scope_to_user(Site.objects.filter(active=True), user).order_by("code")


def visible_record(user, content_type_id: int, object_id: int, models: list) -> Model:
    """A CRF record of one of ``models`` by content type and id, if the user may see it (404)."""
    try:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
    except ContentType.DoesNotExist:
        raise Http404("No such kind of record.") from None
    if model not in models:
        raise Http404("No data query can be raised on this kind of record.")
    return get_object_or_404(access.scope_to_user(model._default_manager.all(), user), pk=object_id)


def unresolved_on_visible(user, record) -> list[DataQuery]:
    """The unresolved queries about ``record`` that the user may see, with their raisers."""
    queries = access.scope_to_user(unresolved_on(record), user)
    return list(queries.select_related("content_type", "raised_by"))


# --- the report ----------------------------------------------------------------------------------

# The age buckets of unresolved queries, in whole days since they were opened (the admin's too).
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0-7 days", 0, 7),
    ("8-30 days", 8, 30),
    ("> 30 days", 31, None),
)


def opened_age_between(low: int, high: int | None, now: datetime) -> Q:
    """Queries opened ``low`` to ``high`` whole days before ``now`` (``high`` None: or more)."""
    condition = Q(opened_at__lte=now - timedelta(days=low))
    if high is not None:
        condition &= Q(opened_at__gt=now - timedelta(days=high + 1))
    return condition


def _per_status() -> dict[str, Count]:
    counts = {f"n_{status}": Count("pk", filter=Q(status=status)) for status in QueryStatus.values}
    return {**counts, "n_total": Count("pk")}


def status_counts_by_site(queries: QuerySet) -> list[dict]:
    """Per site: the number of queries of each status (``n_open``, ``n_answered`` ...,
    ``n_total``); one grouped query."""
    return list(
        queries.order_by()
        .values("site__code", "site__name")
        .annotate(**_per_status())
        .order_by("site__code")
    )


def status_counts_by_check(queries: QuerySet) -> list[dict]:
    """Per edit check (``check_code`` "" = raised by hand): the number of each status."""
    return list(
        queries.order_by().values("check_code").annotate(**_per_status()).order_by("check_code")
    )


def status_totals(queries: QuerySet) -> dict:
    return queries.order_by().aggregate(**_per_status())


def days_to_close(queries: QuerySet) -> list[float]:
    """Days from opening to closing of each closed query (one query; the median is the
    caller's)."""
    durations = (
        queries.filter(status=QueryStatus.CLOSED, closed_at__isnull=False)
        .order_by()
        .annotate(
            took=ExpressionWrapper(F("closed_at") - F("opened_at"), output_field=DurationField())
        )
        .values_list("took", flat=True)
    )
    return [took.total_seconds() / 86400 for took in durations]


def median_days_to_close(queries: QuerySet) -> float | None:
    durations = days_to_close(queries)
    return statistics.median(durations) if durations else None


def oldest_unresolved(queries: QuerySet, limit: int = 10) -> QuerySet:
    return queries.filter(status__in=UNRESOLVED).order_by("opened_at", "pk")[:limit]


def unresolved_by_age(queries: QuerySet, now: datetime) -> list[tuple[str, int]]:
    """(bucket label, number of unresolved queries) for each of ``AGE_BUCKETS``: one query."""
    counts = queries.filter(status__in=UNRESOLVED).aggregate(
        **{
            f"b{i}": Count("pk", filter=opened_age_between(low, high, now))
            for i, (_, low, high) in enumerate(AGE_BUCKETS)
        }
    )
    return [(label, counts[f"b{i}"]) for i, (label, _, _) in enumerate(AGE_BUCKETS)]


def shown_snapshot(query: DataQuery, user) -> dict:
    """The offending values as ``user`` may see them (pages, admin, API): the direct identifiers
    masked for the sponsor's people (``access.sees_direct_identifiers``)."""
    snapshot = dict(query.value_snapshot or {})
    if access.sees_direct_identifiers(user):
        return snapshot
    return {
        key: (HIDDEN_VALUE if key in access.DIRECT_IDENTIFIER_FIELDS else value)
        for key, value in snapshot.items()
    }
