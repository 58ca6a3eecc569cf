"""Reads of data queries, scoped through ``core.access``: pages, admin, API and reports read
through these; ``services`` and ``sweep`` write."""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db.models import F, Prefetch, QuerySet

from core import access

from .models import UNRESOLVED, DataQuery, QueryMessage


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
