"""Reads of adverse events: a subject's events, one event a user may see, the SAE reports due,
an event's audit trail. Pages, admin, API and the apps above read through these; ``services``
writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from core import access
from core.audit import history_rows
from randomization.arms import drug_name
from subjects.models import Subject
from subjects.selectors import visible_subject

from .models import AdverseEvent, AeCausality
from .sae_clock import SaeClock


def subject_events(subject: Subject) -> QuerySet:
    """The subject's AEs in number order, with their terms and causalities."""
    return (
        AdverseEvent.objects.filter(subject=subject)
        .select_related("term", "subject__site")
        .prefetch_related(Prefetch("causalities", queryset=AeCausality.objects.order_by("drug")))
        .order_by("ae_number")
    )


def visible_event(user, identifier: str, number: int) -> tuple[Subject, AdverseEvent]:
    """The subject and its AE ``number``, if the user may see them (else a 404)."""
    subject = visible_subject(user, identifier)
    return subject, get_object_or_404(subject_events(subject), ae_number=number)


@dataclass(frozen=True)
class SaeDueRow:
    ae: AdverseEvent
    clock: SaeClock
    hours_left: float  # negative when overdue

    @property
    def hours_over(self) -> float:
        return -self.hours_left


def sae_due_rows(user, now: datetime) -> list[SaeDueRow]:
    """The unreported serious AEs of the user's sites, the most urgent first."""
    pending = (
        access.scope_to_user(AdverseEvent.objects.all(), user)
        .sae_unreported(now)
        .with_sae_due()
        .select_related("term", "subject__site")
        .order_by("sae_due", "pk")
    )
    return [
        SaeDueRow(ae, ae.sae_clock(now), (ae.sae_due - now).total_seconds() / 3600)
        for ae in pending
    ]


def event_audit_trail(ae: AdverseEvent) -> list[dict]:
    """The AE's audit trail with its causality rows' trails, newest first."""
    rows = history_rows(ae.history.select_related("history_user").order_by("-history_date"))
    records = list(
        AeCausality.history.filter(adverse_event_id=ae.pk)
        .select_related("history_user")
        .order_by("-history_date")
    )
    for row, record in zip(history_rows(records), records, strict=True):
        drug = drug_name(record.drug)
        row["what"] = f"{row['what']} ({drug})"
        for change in row["changes"]:
            change["field"] = f"{drug} {change['field']}"
        rows.append(row)
    return sorted(rows, key=lambda r: r["when"], reverse=True)
