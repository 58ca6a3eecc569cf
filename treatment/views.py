"""Site-staff pages of treatment: the subject's visit calendar with the exposure summary, the
cycle form (with its IV doses) and the sorafenib period form. Rules live in ``services``.

Every page finds the subject through ``subjects.selectors.visible_subject`` (scoped to the user's
sites): another site's subject is a 404. A user who may view but not enter data sees the
records read-only, never a form.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from adverse_events.models import AdverseEvent
from core import access
from core.pages import (
    edit_record_page,
    new_record_page,
    read_only_record_page,
    saved_with_reason,
)
from randomization.arms import StudyDrug
from subjects.pages import data_entry_page
from subjects.selectors import visible_subject

from . import selectors, services
from .forms import CycleForm, NewCycleForm, NewOralPeriodForm, OralPeriodForm


def _calendar_url(subject):
    return reverse("treatment:calendar", args=[subject.subject_identifier])


def _events(subject):
    return AdverseEvent.objects.filter(subject=subject).select_related("term").order_by("ae_number")


def subject_panel(request, subject):
    """The treatment panel of the subject page (``core.panels``): the calendar's counts, the
    next visit, the overdue ones, and the exposure to each study drug."""
    calendar = selectors.subject_calendar(subject)
    return "treatment/_subject_panel.html", {
        "subject": subject,
        "calendar": calendar,
        "overdue": calendar.with_status("overdue") if calendar else [],
        "exposure": selectors.subject_exposure(subject) if calendar else [],
    }


@login_required
def calendar(request, identifier):
    subject = visible_subject(request.user, identifier)
    cal = selectors.subject_calendar(subject)
    drugs = selectors.study_drugs_of(subject)
    return render(
        request,
        "treatment/calendar.html",
        {
            "subject": subject,
            "calendar": cal,
            "exposure": selectors.subject_exposure(subject) if cal else [],
            "cycles": selectors.subject_cycles(subject),
            "periods": selectors.subject_oral_periods(subject),
            "takes_sorafenib": StudyDrug.SORAFENIB in drugs,
            "can_edit": bool(drugs) and access.can_enter_data(request.user, subject),
        },
    )


def _refuse_unrandomized(request, subject):
    if not selectors.study_drugs_of(subject):
        messages.error(request, f"{subject} is not randomized: no study drug is recorded.")
        return redirect(subject)
    return None


@data_entry_page
def cycle_new(request, subject):
    if refused := _refuse_unrandomized(request, subject):
        return refused
    drugs = selectors.study_drugs_of(subject)
    last = selectors.subject_cycles(subject).last()
    form = NewCycleForm(
        request.POST or None,
        drugs=drugs,
        events=_events(subject),
        initial={"number": (last.number + 1) if last else 1, "weight_kg": last and last.weight_kg},
    )
    return new_record_page(
        request,
        form,
        heading=f"New treatment cycle — {subject}",
        subject=subject,
        done_url=_calendar_url(subject),
        save=lambda: services.save_cycle(subject, user=request.user, **form.service_data()),
        saved_message=lambda cycle: f"Cycle {cycle.number} recorded.",
    )


@login_required
def cycle_edit(request, identifier, number):
    subject, cycle = selectors.visible_cycle(request.user, identifier, number)
    if not access.can_enter_data(request.user, cycle):
        return read_only_record_page(
            request, "treatment/cycle_detail.html", subject=subject, name="cycle", record=cycle
        )
    form = CycleForm(
        request.POST or None,
        initial=CycleForm.initial_from(cycle),
        drugs=selectors.study_drugs_of(subject),
        events=_events(subject),
        editing=True,
    )
    return edit_record_page(
        request,
        form,
        record=cycle,
        heading=f"Cycle {cycle.number} — {subject}",
        subject=subject,
        done_url=_calendar_url(subject),
        save=saved_with_reason(request, form, services.save_cycle, subject, cycle=cycle),
        saved_message=lambda saved: f"Cycle {saved.number} updated.",
    )


@data_entry_page
def oral_period_new(request, subject):
    if refused := _refuse_unrandomized(request, subject):
        return refused
    form = NewOralPeriodForm(request.POST or None, events=_events(subject))
    return new_record_page(
        request,
        form,
        heading=f"New sorafenib dosing period — {subject}",
        subject=subject,
        done_url=_calendar_url(subject),
        save=lambda: services.save_oral_period(subject, user=request.user, **form.service_data()),
        saved_message=lambda period: (
            f"Sorafenib period recorded: {period.get_dose_level_display()}."
        ),
        intro="One period per dose level: stop the current period, then start the next one.",
    )


@login_required
def oral_period_edit(request, identifier, pk):
    subject, period = selectors.visible_oral_period(request.user, identifier, pk)
    if not access.can_enter_data(request.user, period):
        return read_only_record_page(
            request,
            "treatment/oral_period_detail.html",
            subject=subject,
            name="period",
            record=period,
        )
    form = OralPeriodForm(
        request.POST or None,
        initial=OralPeriodForm.initial_from(period),
        events=_events(subject),
        editing=True,
    )
    return edit_record_page(
        request,
        form,
        record=period,
        heading=f"Sorafenib period from {period.start_date:%Y-%m-%d} — {subject}",
        subject=subject,
        done_url=_calendar_url(subject),
        save=saved_with_reason(request, form, services.save_oral_period, subject, period=period),
        saved_message="Sorafenib period updated.",
    )
