"""Site-staff pages of the AE CRF and the "SAE reports due" list. Rules live in ``services``.

Every page finds the subject through ``subjects.selectors.visible_subject`` (scoped to the user's
sites): another site's subject or AE is a 404. A user who may view but not enter data sees the
AE read-only (``ae_detail.html``), never a form.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from core import access
from core.pages import (
    form_page,
    read_only_record_page,
    refuse_read_only,
    save_form,
    save_new_record,
    save_record_edit,
)
from core.panels import field_flags
from core.site_time import format_site_time
from subjects.pages import data_entry_page
from subjects.selectors import visible_subject

from . import selectors, services
from .forms import AdverseEventForm, NewAdverseEventForm, SaeReportForm
from .models import CtcaeTerm
from .sae_clock import SaeClock


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
    if ae is not None:
        extra["history"] = selectors.event_audit_trail(ae)
        extra["flags"] = field_flags(request, ae, form=form)
    return form_page(
        request,
        form,
        heading,
        subject,
        template="adverse_events/ae_form.html",
        ae=ae,
        term_grades=_term_grades(),
        cancel_url=_list_url(subject),
        submit_label="Save AE",
        **extra,
    )


def subject_panel(request, subject):
    """The adverse events panel of the subject page (``core.panels``)."""
    return "adverse_events/_subject_panel.html", {
        "subject": subject,
        "events": selectors.subject_events(subject),
    }


@login_required
def ae_list(request, identifier):
    subject = visible_subject(request.user, identifier)
    return render(
        request,
        "adverse_events/ae_list.html",
        {
            "subject": subject,
            "events": selectors.subject_events(subject),
            "can_edit": access.can_enter_data(request.user, subject),
            "now": timezone.now(),
        },
    )


@data_entry_page
def ae_new(request, subject):
    drugs = services.study_drugs_of(subject)
    form = NewAdverseEventForm(request.POST or None, drugs=drugs, site=subject.site)
    if saved := save_new_record(  # a double click goes to the AE the first click made
        request,
        form,
        save=lambda: services.record_adverse_event(
            subject, user=request.user, **form.service_data()
        ),
        saved_message=lambda ae: f"AE {ae.ae_number} recorded: {ae.term} grade {ae.grade}.",
        done_url=_list_url(subject),
    ):
        return saved
    return _render_form(request, form, f"New adverse event — {subject}", subject, drugs=drugs)


@login_required
def ae_edit(request, identifier, number):
    subject, ae = selectors.visible_event(request.user, identifier, number)
    if not access.can_enter_data(request.user, subject):
        return read_only_record_page(
            request,
            "adverse_events/ae_detail.html",
            subject=subject,
            name="ae",
            record=ae,
            history=selectors.event_audit_trail(ae),
            may_report=ae.serious and access.can_report_safety(request.user, ae),
        )
    drugs = services.study_drugs_of(subject)
    form = AdverseEventForm(
        request.POST or None,
        initial=AdverseEventForm.initial_from(ae),
        drugs=drugs,
        editing=True,
        site=subject.site,
    )
    if saved := save_record_edit(
        request,
        form,
        save=lambda: services.update_adverse_event(
            ae,
            user=request.user,
            reason=form.cleaned_data["reason"],
            **form.service_data(current=ae),
        ),
        saved_message=lambda ae: f"AE {ae.ae_number} updated.",
        done_url=_list_url(subject),
        record=ae,
    ):
        return saved
    return _render_form(
        request, form, f"AE {ae.ae_number} — {subject}", subject, ae=ae, drugs=drugs
    )


@login_required
def ae_report(request, identifier, number):
    subject, ae = selectors.visible_event(request.user, identifier, number)
    # The SAE report time is recorded on frozen data too (``access.can_report_safety``).
    if refused := refuse_read_only(
        request, subject, lambda user, _subject: access.require_safety_reporting(user, ae)
    ):
        return refused
    correcting = ae.sae_reported_at is not None
    form = SaeReportForm(
        request.POST or None,
        initial={"reported_at": ae.sae_reported_at or timezone.now()},
        correcting=correcting,
        site=subject.site,
    )
    if saved := save_form(
        request,
        form,
        save=lambda: services.mark_sae_reported(
            ae,
            user=request.user,
            reported_at=form.cleaned_data["reported_at"],
            reason=form.cleaned_data.get("reason", ""),
        ),
        saved_message=f"AE {ae.ae_number}: report to the sponsor recorded.",
        done_url=_list_url(subject),
    ):
        return saved
    intro = (
        f"Site became aware {format_site_time(ae.site_aware_at, subject.site)}; report due by "
        f"{format_site_time(ae.sae_due_at, subject.site)}."
        if ae.sae_due_at
        else "This event is not serious: it is not reported within 24 hours."
    )
    return form_page(
        request,
        form,
        f"SAE report — AE {ae.ae_number} of {subject} ({ae.term})",
        subject,
        intro=intro,
        cancel_url=_list_url(subject),
    )


@login_required
def sae_due(request):
    """Unreported serious AEs of the user's sites: overdue first, then by due time."""
    now = timezone.now()
    rows = selectors.sae_due_rows(request.user, now)
    return render(
        request,
        "adverse_events/sae_due.html",
        {
            "rows": rows,
            "now": now,
            "overdue": sum(row.clock == SaeClock.OVERDUE for row in rows),
            "due_soon": sum(row.clock == SaeClock.DUE_SOON for row in rows),
        },
    )
