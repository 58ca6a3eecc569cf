"""Site-staff pages of the AE CRF and the "SAE reports due" list. Rules live in ``services``.

Every page finds the subject through ``subjects.views.visible_subject`` (scoped to the user's
sites): another site's subject or AE is a 404.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from core import access
from core.audit import history_rows
from core.forms import run_service
from randomization.arms import StudyDrug
from subjects.selectors import visible_subject

from . import services
from .forms import AdverseEventForm, SaeReportForm
from .models import AdverseEvent, AeCausality, CtcaeTerm


def _events(subject):
    return (
        AdverseEvent.objects.filter(subject=subject)
        .select_related("term", "subject__site")
        .prefetch_related(Prefetch("causalities", queryset=AeCausality.objects.order_by("drug")))
        .order_by("ae_number")
    )


def _event(request, identifier, number):
    subject = visible_subject(request.user, identifier)
    return subject, get_object_or_404(_events(subject), ae_number=number)


def _list_url(subject):
    return reverse("adverse_events:list", args=[subject.subject_identifier])


def _term_grades() -> dict:
    """For the form script: each term's grades and their texts, and whether it needs a verbatim."""
    return {
        str(pk): {"grades": grades, "texts": [g1, g2, g3, g4, g5], "other": other}
        for pk, grades, g1, g2, g3, g4, g5, other in CtcaeTerm.objects.values_list(
            "pk", "grades", "grade1", "grade2", "grade3", "grade4", "grade5", "is_other_specify"
        )
    }


def _render_form(request, form, heading, subject, ae=None, **extra):
    context = {
        "form": form,
        "heading": heading,
        "subject": subject,
        "ae": ae,
        "term_grades": _term_grades(),
        "cancel_url": _list_url(subject),
        **extra,
    }
    if ae is not None:
        context["history"] = ae_history(ae)
    return render(request, "adverse_events/ae_form.html", context)


def ae_history(ae: AdverseEvent) -> list[dict]:
    """The AE's audit trail with its causality rows' trails, newest first."""
    rows = history_rows(ae.history.select_related("history_user").order_by("-history_date"))
    records = list(
        AeCausality.history.filter(adverse_event_id=ae.pk)
        .select_related("history_user")
        .order_by("-history_date")
    )
    for row, record in zip(history_rows(records), records, strict=True):
        drug = StudyDrug(record.drug).name.title()
        row["what"] = f"{row['what']} ({drug})"
        for change in row["changes"]:
            change["field"] = f"{drug} {change['field']}"
        rows.append(row)
    return sorted(rows, key=lambda r: r["when"], reverse=True)


def subject_panel(request, subject):
    """The adverse events panel of the subject page (``core.panels``)."""
    return "adverse_events/_subject_panel.html", {"subject": subject, "events": _events(subject)}


@login_required
def ae_list(request, identifier):
    subject = visible_subject(request.user, identifier)
    return render(
        request,
        "adverse_events/ae_list.html",
        {
            "subject": subject,
            "events": _events(subject),
            "can_edit": access.can_enter_data(request.user, subject),
            "now": timezone.now(),
        },
    )


@login_required
def ae_new(request, identifier):
    subject = visible_subject(request.user, identifier)
    drugs = services.study_drugs_of(subject)
    form = AdverseEventForm(request.POST or None, drugs=drugs)
    if request.method == "POST" and form.is_valid():
        ae = run_service(
            form,
            lambda: services.record_adverse_event(
                subject, user=request.user, **form.service_data()
            ),
        )
        if ae:
            messages.success(request, f"AE {ae.ae_number} recorded: {ae.term} grade {ae.grade}.")
            return redirect(_list_url(subject))
    return _render_form(request, form, f"New adverse event — {subject}", subject, drugs=drugs)


@login_required
def ae_edit(request, identifier, number):
    subject, ae = _event(request, identifier, number)
    drugs = services.study_drugs_of(subject)
    form = AdverseEventForm(
        request.POST or None,
        initial=AdverseEventForm.initial_from(ae),
        drugs=drugs,
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        done = run_service(
            form,
            lambda: services.update_adverse_event(
                ae,
                user=request.user,
                reason=form.cleaned_data["reason"],
                **form.service_data(current=ae),
            ),
        )
        if done:
            messages.success(request, f"AE {ae.ae_number} updated.")
            return redirect(_list_url(subject))
    return _render_form(
        request, form, f"AE {ae.ae_number} — {subject}", subject, ae=ae, drugs=drugs
    )


@login_required
def ae_report(request, identifier, number):
    subject, ae = _event(request, identifier, number)
    correcting = ae.sae_reported_at is not None
    form = SaeReportForm(
        request.POST or None,
        initial={"reported_at": ae.sae_reported_at or timezone.now()},
        correcting=correcting,
    )
    if request.method == "POST" and form.is_valid():
        done = run_service(
            form,
            lambda: services.mark_sae_reported(
                ae,
                user=request.user,
                reported_at=form.cleaned_data["reported_at"],
                reason=form.cleaned_data.get("reason", ""),
            ),
        )
        if done:
            messages.success(request, f"AE {ae.ae_number}: report to the sponsor recorded.")
            return redirect(_list_url(subject))
    intro = (
        f"Site became aware {ae.site_aware_at:%Y-%m-%d %H:%M} UTC; report due by "
        f"{ae.sae_due_at:%Y-%m-%d %H:%M} UTC."
        if ae.sae_due_at
        else "This event is not serious: it is not reported within 24 hours."
    )
    return render(
        request,
        "form_page.html",
        {
            "form": form,
            "heading": f"SAE report — AE {ae.ae_number} of {subject} ({ae.term})",
            "subject": subject,
            "intro": intro,
            "cancel_url": _list_url(subject),
        },
    )


@login_required
def sae_due(request):
    """Unreported serious AEs of the user's sites: overdue first, then by due time."""
    now = timezone.now()
    pending = (
        access.scope_to_user(AdverseEvent.objects.all(), request.user)
        .sae_unreported()
        .with_sae_due()
        .select_related("term", "subject__site")
        .order_by("sae_due", "pk")
    )
    overdue = set(pending.sae_overdue(now).values_list("pk", flat=True))
    due_soon = set(pending.sae_due_soon(now).values_list("pk", flat=True))
    rows = [
        {
            "ae": ae,
            "state": "overdue" if ae.pk in overdue else "due soon" if ae.pk in due_soon else "",
            "hours_left": (ae.sae_due - now).total_seconds() / 3600,
            "hours_over": (now - ae.sae_due).total_seconds() / 3600,
        }
        for ae in pending
    ]
    return render(
        request,
        "adverse_events/sae_due.html",
        {"rows": rows, "now": now, "overdue": len(overdue), "due_soon": len(due_soon)},
    )
