"""Data queries: a question about one field of one CRF record, raised by an edit check (system)
or by a data manager or monitor (manual), answered by the site, closed by data management.

Life cycle (``services`` holds the transitions and who may make them)::

    open ──answer──> answered ──close──> closed ──reopen──> reopened ──answer──> answered …
      └────────────── cancel (raised in error) ──────────────> cancelled

At most one system query is unresolved (open, answered or reopened) per check, record and field:
a partial unique index, so two sweeps running at once cannot both open it.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from core.audit import AuditedManager, AuditedQuerySet
from core.crf import AuditedModel
from core.edit_checks import Severity
from core.validators import bounded_text


class QueryStatus(models.TextChoices):
    OPEN = "open", "Open"
    ANSWERED = "answered", "Answered"
    REOPENED = "reopened", "Reopened"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


# Waiting for someone: the site (open, reopened) or data management (answered).
UNRESOLVED = (QueryStatus.OPEN, QueryStatus.ANSWERED, QueryStatus.REOPENED)
AWAITING_SITE = (QueryStatus.OPEN, QueryStatus.REOPENED)


class Resolution(models.TextChoices):
    """How a closed query ended."""

    RESOLVED_BY_DATA_CHANGE = "data_change", "Resolved by data change"
    CONFIRMED_CORRECT = "confirmed_correct", "Data confirmed correct"
    CLOSED = "closed", "Closed"


class ResponseReason(models.TextChoices):
    """The site's reason with an answer (the usual EDC vocabulary)."""

    DATA_CORRECTED = "data_corrected", "Data corrected"
    CONFIRMED_CORRECT = "confirmed_correct", "Data confirmed correct"
    MISSING_NOT_DONE = "missing_not_done", "Data missing / not done"
    WRONG_SOURCE = "wrong_source", "Wrong source document"
    OTHER = "other", "Other"


class DataQueryQuerySet(AuditedQuerySet):
    def unresolved(self):
        return self.filter(status__in=UNRESOLVED)

    def system(self):
        return self.exclude(check_code="")


class DataQuery(AuditedModel):
    site_lookup = "site"
    subject_lookup = "subject"
    # The sweep writes queries itself: a query's own change does not set the checks off again.
    triggers_edit_checks = False

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="data_queries"
    )
    site = models.ForeignKey("subjects.Site", on_delete=models.PROTECT, related_name="+")
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    field = models.CharField(max_length=100, blank=True, help_text="Blank: the whole record.")
    record_label = models.CharField(max_length=200, help_text="The record as people name it.")

    check_code = models.CharField(
        "edit check", max_length=20, blank=True, db_index=True, help_text="Blank: raised by hand."
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.ERROR)
    raised_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    message = models.TextField(max_length=4000, validators=[bounded_text(4000)])
    value_snapshot = models.JSONField(
        "offending values",
        default=dict,
        blank=True,
        help_text="The offending values (an edit check's query; kept current while unresolved).",
    )
    value_key = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the snapshot: same values, same key."
    )

    status = models.CharField(
        max_length=10, choices=QueryStatus.choices, default=QueryStatus.OPEN, db_index=True
    )
    resolution = models.CharField(max_length=20, choices=Resolution.choices, blank=True)
    opened_at = models.DateTimeField(db_index=True, help_text="UTC.")
    closed_at = models.DateTimeField(null=True, blank=True, help_text="UTC.")
    updated = models.DateTimeField(auto_now=True, db_index=True)

    objects = AuditedManager.from_queryset(DataQueryQuerySet)()

    class Meta:
        ordering = ["opened_at", "pk"]
        verbose_name = "data query"
        verbose_name_plural = "data queries"
        constraints = [
            models.UniqueConstraint(
                fields=["check_code", "content_type", "object_id", "field"],
                condition=Q(status__in=UNRESOLVED) & ~Q(check_code=""),
                name="one_unresolved_system_query_per_check_record_field",
            ),
        ]
        indexes = [
            models.Index(fields=["content_type", "object_id"], name="query_record"),
            # The lists' order, read down an index: a page of a list reads its own rows only.
            models.Index(fields=["opened_at", "id"], name="query_opened_order"),
        ]

    def __str__(self):
        return f"Query {self.pk} on {self.record_label}{self.field_suffix}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("queries:detail", args=[self.pk])

    @property
    def field_suffix(self) -> str:
        return f" — {self.field_label}" if self.field else ""

    @property
    def field_label(self) -> str:
        if not self.field:
            return ""
        model = self.content_type.model_class()
        try:
            return str(model._meta.get_field(self.field).verbose_name)
        except Exception:  # a field removed since: keep its name  # noqa: BLE001
            return self.field

    @property
    def is_system(self) -> bool:
        return bool(self.check_code)

    @property
    def is_unresolved(self) -> bool:
        return self.status in UNRESOLVED

    @staticmethod
    def audit_label(record) -> str:
        return f"Query {record.id}"


class MessageKind(models.TextChoices):
    RAISED = "raised", "Raised"
    ANSWERED = "answered", "Answered"
    CLOSED = "closed", "Closed"
    REOPENED = "reopened", "Reopened"
    CANCELLED = "cancelled", "Cancelled"
    COMMENT = "comment", "Comment"


class QueryMessage(AuditedModel):
    """One message of a query's thread: who, when (UTC), what; a site answer gives its reason."""

    site_lookup = "query__site"
    subject_lookup = "query__subject"
    triggers_edit_checks = False
    append_only = True  # a thread only grows: on PostgreSQL its rows refuse UPDATE and DELETE

    query = models.ForeignKey(DataQuery, on_delete=models.PROTECT, related_name="thread")
    kind = models.CharField(max_length=10, choices=MessageKind.choices)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField("time (UTC)")
    text = models.TextField(max_length=4000, validators=[bounded_text(4000)])
    response_reason = models.CharField(max_length=20, choices=ResponseReason.choices, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        verbose_name = "query message"

    def __str__(self):
        return f"{self.get_kind_display()} by {self.author} at {self.at:%Y-%m-%d %H:%M} UTC"

    @staticmethod
    def audit_label(record) -> str:
        return f"Query {record.query_id} message"
