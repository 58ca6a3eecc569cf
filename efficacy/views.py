"""Site-staff pages of the RECIST tumor assessments. Rules live in ``services``.

* the subject's tumor page: the baseline lesion table, the assessments with the investigator's
  and the derived response side by side, the best overall response and the first progression;
* baseline lesion forms (new, correct with a reason);
* the assessment form: each target lesion's baseline and nadir beside its input; after the save
  the page shows the derived RECIST 1.1 response beside the investigator's.

Every page finds the subject through ``subjects.selectors.visible_subject`` (scoped to the
user's sites): another site's subject is a 404. A user who may view but not enter data sees the
pages read-only, never a form.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse

from core import access
from core.forms import run_service
from core.pages import (
    edit_record_page,
    new_record_page,
    refuse_read_only,
    saved_with_reason,
)
from core.panels import field_flags
from subjects.pages import data_entry_page
from subjects.selectors import visible_subject

from . import selectors, services
from .forms import (
    AssessmentForm,
    NewAssessmentForm,
    NewNonTargetLesionForm,
    NewTargetLesionForm,
    NonTargetLesionForm,
    TargetLesionForm,
)
from .models import NonTargetLesion, TargetLesion


def _home(subject) -> str:
    return reverse("efficacy:home", args=[subject.subject_identifier])


def _summary(subject) -> dict:
    return {
        "subject": subject,
        "targets": selectors.target_lesions(subject),
        "non_targets": selectors.non_target_lesions(subject),
        "assessments": selectors.subject_assessments(subject),
        "best": selectors.best_response(subject),
        "progression": selectors.first_progression(subject),
    }


def subject_panel(request, subject):
    """The tumor assessment panel of the subject page (``core.panels``)."""
    context = _summary(subject)
    context["can_record"] = (
        subject.is_consented
        and access.can_enter_data(request.user, subject)
        and (context["targets"].exists() or context["non_targets"].exists())
    )
    return "efficacy/_subject_panel.html", context


@login_required
def home(request, identifier):
    subject = visible_subject(request.user, identifier)
    context = _summary(subject)
    context["can_edit"] = access.can_enter_data(request.user, subject)
    context["has_lesions"] = context["targets"].exists() or context["non_targets"].exists()
    return render(request, "efficacy/home.html", context)


def _lesion_page(request, identifier, *, kind, number=None):
    subject = visible_subject(request.user, identifier)
    if refused := refuse_read_only(request, subject, access.require_data_entry):
        return refused
    model = TargetLesion if kind == "target" else NonTargetLesion
    what = "target lesion" if kind == "target" else "non-target lesion"
    if number is None:
        form_class = NewTargetLesionForm if kind == "target" else NewNonTargetLesionForm
        form = form_class(request.POST or None)
        add = services.add_target_lesion if kind == "target" else services.add_non_target_lesion
        return new_record_page(
            request,
            form,
            heading=f"New {what} (baseline) — {subject}",
            subject=subject,
            done_url=_home(subject),
            save=lambda: add(subject, user=request.user, **form.service_data()),
            saved_message=lambda lesion: f"{lesion.code} recorded: {lesion}.",
            record_url=lambda _lesion: _home(subject),
        )
    lesion = get_object_or_404(model.objects.filter(subject=subject), number=number)
    form_class = TargetLesionForm if kind == "target" else NonTargetLesionForm
    form = form_class(request.POST or None, instance=lesion, editing=True)
    update = (
        services.update_target_lesion if kind == "target" else services.update_non_target_lesion
    )
    return edit_record_page(
        request,
        form,
        record=lesion,
        heading=f"{lesion.code} — {subject}",
        subject=subject,
        done_url=_home(subject),
        save=lambda: update(
            model.objects.get(pk=lesion.pk),  # fresh: the form wrote onto ``lesion``
            user=request.user,
            reason=form.cleaned_data["reason"],
            **form.service_data(),
        ),
        saved_message=lambda fresh: f"{fresh.code} corrected.",
    )


@login_required
def target_new(request, identifier):
    return _lesion_page(request, identifier, kind="target")


@login_required
def target_edit(request, identifier, number):
    return _lesion_page(request, identifier, kind="target", number=number)


@login_required
def non_target_new(request, identifier):
    return _lesion_page(request, identifier, kind="non_target")


@login_required
def non_target_edit(request, identifier, number):
    return _lesion_page(request, identifier, kind="non_target", number=number)


def _render_assessment(request, subject, form, heading, assessment=None):
    return render(
        request,
        "efficacy/assessment_form.html",
        {
            "subject": subject,
            "form": form,
            "heading": heading,
            "assessment": assessment,
            "cancel_url": _home(subject),
            "flags": field_flags(request, assessment) if assessment else {},
        },
    )


def _saved_message(request, assessment) -> None:
    text = (
        f"Assessment {assessment.number} saved. RECIST 1.1 derives "
        f"{assessment.get_derived_response_display()}; the investigator's response is "
        f"{assessment.get_investigator_response_display()}."
    )
    if assessment.responses_differ:
        messages.warning(request, f"{text} They differ: check the data or the response.")
    else:
        messages.success(request, text)


@data_entry_page
def assessment_new(request, subject):
    form = NewAssessmentForm(
        request.POST or None,
        rows=selectors.lesion_rows(subject),
        non_targets=selectors.non_target_lesions(subject),
    )
    if request.method == "POST" and not form.is_repeat(request.user) and form.is_valid():
        assessment = form.save_once(
            request.user,
            lambda: services.record_assessment(subject, user=request.user, **form.service_data()),
        )
        if assessment:
            _saved_message(request, assessment)
            return redirect(assessment)
    if form.repeat_of is not None:
        messages.info(request, form.SAVED_BEFORE)
        return redirect(form.repeat_of or _home(subject))
    return _render_assessment(request, subject, form, f"New tumor assessment — {subject}")


@login_required
def assessment(request, identifier, number):
    subject, found = selectors.visible_assessment(request.user, identifier, number)
    rows = selectors.lesion_rows(subject, found)
    if not access.can_enter_data(request.user, subject):
        return render(
            request,
            "efficacy/assessment_detail.html",
            {
                "subject": subject,
                "assessment": found,
                "rows": rows,
                "flags": field_flags(request, found),
            },
        )
    form = AssessmentForm(
        request.POST or None,
        initial=AssessmentForm.initial_from(found),
        rows=rows,
        non_targets=selectors.non_target_lesions(subject),
        editing=True,
    )
    if request.method == "POST" and form.is_valid():
        done = run_service(
            form, saved_with_reason(request, form, services.update_assessment, found)
        )
        if done:
            _saved_message(request, done)
            return redirect(done)
    return _render_assessment(
        request, subject, form, f"Tumor assessment {found.number} — {subject}", found
    )
