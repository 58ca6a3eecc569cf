"""Site-staff pages of the eligibility CRF. The rules live in ``services``; views call them.

A subject of another site is a 404 (``subjects.views.visible_subject``), never a 403.
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from core import access
from core.forms import run_service
from core.pages import (
    form_page,
    posted_record_actions,
    refuse_read_only,
    save_form,
    save_with_record_actions,
    unsaved_changes,
)
from core.panels import field_flags
from core.site_time import today_at
from subjects import services as subject_services
from subjects.pages import data_entry_page
from subjects.selectors import visible_subject

from . import selectors, services
from .forms import AssessmentForm, ScreenFailureForm, SignatureForm, prior_therapy_formset
from .models import EligibilityAssessment, SignatureKind


def subject_panel(request, subject):
    """The eligibility panel of the subject page (``core.panels``)."""
    assessment = selectors.with_prior_therapies(selectors.get_assessment(subject))
    return "eligibility/_subject_panel.html", {
        "subject": subject,
        "assessment": assessment,
        "evaluation": services.evaluate_eligibility(assessment) if assessment else None,
        "signature": selectors.valid_signature(assessment) if assessment else None,
    }


def _may_sign(user, assessment, evaluation, kind) -> bool:
    return (
        access.can_sign_eligibility(user, assessment.subject)
        and services.sign_off_refusal(assessment, evaluation, kind) is None
    )


@login_required
def detail(request, identifier):
    subject = visible_subject(request.user, identifier)
    assessment = selectors.with_prior_therapies(selectors.get_assessment(subject))
    context = {
        "subject": subject,
        "assessment": assessment,
        "prior_therapies": selectors.prior_therapies(assessment),
        "can_edit": access.can_enter_data(request.user, subject),
    }
    if assessment is not None:
        evaluation = services.evaluate_eligibility(assessment)
        context.update(
            evaluation=evaluation,
            signature=selectors.valid_signature(assessment),
            signatures=selectors.signature_history(assessment),
            history=selectors.assessment_audit_trail(assessment),
            can_sign_eligible=_may_sign(
                request.user, assessment, evaluation, SignatureKind.ELIGIBLE
            ),
            can_confirm_failure=_may_sign(
                request.user, assessment, evaluation, SignatureKind.SCREEN_FAILURE
            ),
            flags=field_flags(request, assessment),
        )
    return render(request, "eligibility/detail.html", context)


@data_entry_page
def edit(request, subject):
    try:
        subject_services.ensure_consented(subject)
    except subject_services.ConsentRequired as exc:
        messages.error(request, exc.message)
        return redirect(subject)
    existing = selectors.with_prior_therapies(selectors.get_assessment(subject))
    # The form gets its own copy: validating a ModelForm writes the input into its instance, and
    # the evaluation shown beside a refused form is the one of the saved data, not of the input.
    instance = selectors.get_assessment(subject) or EligibilityAssessment(subject=subject)
    data = request.POST if request.method == "POST" else None
    rows = prior_therapy_formset(existing, data)
    form = AssessmentForm(data, instance=instance, subject=subject, prior_therapies=rows)
    actions = posted_record_actions(request, existing) if data and existing else []
    if actions:  # a query answered beside a field: saved with the form's changes, if any
        rows_changed = rows.is_bound and rows.has_changed()
        if answered := save_with_record_actions(
            request,
            form,
            actions,
            save=lambda: _save(request, subject, form, rows),
            saved_message="Eligibility saved.",
            changed=unsaved_changes(form) + (["prior therapies"] if rows_changed else []),
            is_valid=lambda: all([form.is_valid(), rows.is_valid() if rows.is_bound else True]),
        ):
            return answered
    elif request.method == "POST":
        rows_valid = rows.is_valid() if rows.is_bound else True  # both validated: all errors
        if form.is_valid() and rows_valid:
            saved = run_service(form, lambda: _save(request, subject, form, rows))
            if saved:
                evaluation = services.evaluate_eligibility(saved)
                messages.success(request, f"Eligibility saved. {evaluation.summary()}")
                return redirect("eligibility:detail", subject.subject_identifier)
    evaluation = services.evaluate_eligibility(existing) if existing else None
    return render(
        request,
        "eligibility/assessment_form.html",
        {
            "subject": subject,
            "form": form,
            "prior_therapies": rows,
            "has_errors": bool(form.errors) or (rows.is_bound and rows.total_error_count() > 0),
            "assessment": existing,
            "evaluation": evaluation,
            "still_missing": selectors.still_missing(existing, evaluation) if existing else None,
            "needed": selectors.fields_the_evaluation_needs(),
            "flags": field_flags(request, existing, form=form),
        },
    )


def _save(request, subject, form, rows):
    """The CRF and (when posted) its prior therapy rows, in one service call."""
    return services.save_assessment(
        subject,
        user=request.user,
        data={name: form.cleaned_data[name] for name in form.crf_field_names},
        reason=form.cleaned_data.get("reason", ""),
        prior_therapies=rows.rows() if rows.is_bound else None,
    )


def _investigator_signs(what: str):
    """A page where the investigator signs the assessment: refused to anyone else, and back to
    the assessment's page while there is none to ``what``. The view gets the subject, the
    assessment and its evaluation."""

    def decorate(view):
        @login_required
        @functools.wraps(view)
        def page(request, identifier):
            subject = visible_subject(request.user, identifier)
            if refused := refuse_read_only(request, subject, access.require_investigator):
                return refused
            assessment = selectors.get_assessment(subject)
            if assessment is None:
                messages.error(request, f"There is no eligibility assessment to {what} yet.")
                return redirect("eligibility:detail", identifier)
            return view(request, subject, assessment, services.evaluate_eligibility(assessment))

        return page

    return decorate


def _signature_page(
    request, form, heading, subject, assessment, evaluation, *, meaning: str, submit_label: str
):
    """The signature form under the evaluation and the ``meaning`` the investigator signs."""
    return form_page(
        request,
        form,
        heading,
        subject,
        intro=f'{evaluation.summary()} By signing you state: "{meaning}"',
        submit_label=submit_label,
        cancel_url=assessment.get_absolute_url(),
    )


@_investigator_signs("sign")
def sign(request, subject, assessment, evaluation):
    form = SignatureForm(request.POST or None)
    if saved := save_form(
        request,
        form,
        save=lambda: services.sign_eligibility(
            assessment, user=request.user, password=form.cleaned_data["password"]
        ),
        saved_message=lambda signature: f"Signed: {signature.meaning}",
        done_url=reverse("eligibility:detail", args=[subject.subject_identifier]),
    ):
        return saved
    return _signature_page(
        request,
        form,
        f"Sign eligibility — {subject}",
        subject,
        assessment,
        evaluation,
        meaning=services.ELIGIBLE_MEANING,
        submit_label="Sign",
    )


@_investigator_signs("confirm")
def screen_failure(request, subject, assessment, evaluation):
    form = ScreenFailureForm(
        request.POST or None,
        initial={"on_date": today_at(subject.site)},
    )
    if saved := save_form(
        request,
        form,
        save=lambda: services.confirm_screen_failure(
            assessment,
            user=request.user,
            password=form.cleaned_data["password"],
            on_date=form.cleaned_data["on_date"],
        ),
        saved_message=f"Screen failure confirmed for {subject}.",
        done_url=subject,
    ):
        return saved
    return _signature_page(
        request,
        form,
        f"Confirm screen failure — {subject}",
        subject,
        assessment,
        evaluation,
        meaning=services.SCREEN_FAILURE_MEANING,
        submit_label="Sign and confirm screen failure",
    )
