"""Site-staff pages of the eligibility CRF. The rules live in ``services``; views call them.

A subject of another site is a 404 (``subjects.views.visible_subject``), never a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core import access
from core.audit import history_rows
from core.forms import run_service
from core.pages import form_page
from subjects.models import SubjectStatus
from subjects.selectors import visible_subject

from . import services
from .forms import AssessmentForm, ScreenFailureForm, SignatureForm
from .models import EligibilityAssessment, EligibilitySignature


def _roles_at_site(user, subject) -> dict[str, bool]:
    return {
        "can_edit": access.can_enter_data(user, subject),
        "can_sign": access.can_sign_eligibility(user, subject),
    }


def _audit_trail(assessment: EligibilityAssessment) -> list[dict]:
    rows = history_rows(
        assessment.history.select_related("history_user").order_by("-history_date")[:100]
    )
    signature_history = EligibilitySignature.history.filter(
        assessment_id=assessment.pk
    ).select_related("history_user")
    rows += history_rows(signature_history.order_by("-history_date")[:100])
    for row in rows:
        row.setdefault("what", "")
    return sorted(rows, key=lambda r: r["when"], reverse=True)


def subject_panel(request, subject):
    """The eligibility panel of the subject page (``core.panels``)."""
    assessment = services.get_assessment(subject)
    return "eligibility/_subject_panel.html", {
        "subject": subject,
        "assessment": assessment,
        "evaluation": services.evaluate_eligibility(assessment) if assessment else None,
        "signature": services.active_signature(assessment) if assessment else None,
    }


@login_required
def detail(request, identifier):
    subject = visible_subject(request.user, identifier)
    assessment = services.get_assessment(subject)
    context = {
        "subject": subject,
        "assessment": assessment,
        **_roles_at_site(request.user, subject),
    }
    if assessment is not None:
        evaluation = services.evaluate_eligibility(assessment)
        signature = services.active_signature(assessment)
        context.update(
            evaluation=evaluation,
            signature=signature,
            signatures=assessment.signatures.select_related("signer"),
            history=_audit_trail(assessment),
            can_sign_eligible=context["can_sign"]
            and evaluation.is_eligible
            and signature is None
            and subject.status == SubjectStatus.SCREENING,
            can_confirm_failure=context["can_sign"]
            and evaluation.status == services.Status.NOT_ELIGIBLE
            and subject.status == SubjectStatus.SCREENING,
        )
    return render(request, "eligibility/detail.html", context)


@login_required
def edit(request, identifier):
    subject = visible_subject(request.user, identifier)
    if not _roles_at_site(request.user, subject)["can_edit"]:
        messages.error(request, "Only site staff and investigators of this site enter CRF data.")
        return redirect("eligibility:detail", identifier)
    if not subject.is_consented:
        messages.error(request, "Record the informed consent before entering any CRF data.")
        return redirect(subject)
    existing = services.get_assessment(subject)
    # The form gets its own copy: validating a ModelForm writes the input into its instance, and
    # the evaluation shown beside a refused form is the one of the saved data, not of the input.
    instance = services.get_assessment(subject) or EligibilityAssessment(subject=subject)
    form = AssessmentForm(request.POST or None, instance=instance, subject=subject)
    if request.method == "POST" and form.is_valid():
        data = {name: form.cleaned_data[name] for name in form.crf_field_names}
        saved = run_service(
            form,
            lambda: services.save_assessment(
                subject,
                user=request.user,
                data=data,
                reason=form.cleaned_data.get("reason", ""),
            ),
        )
        if saved:
            evaluation = services.evaluate_eligibility(saved)
            messages.success(request, f"Eligibility saved. {evaluation.summary()}")
            return redirect("eligibility:detail", identifier)
    evaluation = services.evaluate_eligibility(existing) if existing else None
    return render(
        request,
        "eligibility/assessment_form.html",
        {"subject": subject, "form": form, "assessment": existing, "evaluation": evaluation},
    )


@login_required
def sign(request, identifier):
    subject = visible_subject(request.user, identifier)
    assessment = services.get_assessment(subject)
    if assessment is None:
        messages.error(request, "There is no eligibility assessment to sign yet.")
        return redirect("eligibility:detail", identifier)
    evaluation = services.evaluate_eligibility(assessment)
    form = SignatureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        signature = run_service(
            form,
            lambda: services.sign_eligibility(
                assessment, user=request.user, password=form.cleaned_data["password"]
            ),
        )
        if signature:
            messages.success(request, f"Signed: {signature.meaning}")
            return redirect("eligibility:detail", identifier)
    return form_page(
        request,
        form,
        f"Sign eligibility — {subject}",
        subject,
        intro=f'{evaluation.summary()} By signing you state: "{services.ELIGIBLE_MEANING}"',
        submit_label="Sign",
        cancel_url=assessment.get_absolute_url(),
    )


@login_required
def screen_failure(request, identifier):
    subject = visible_subject(request.user, identifier)
    assessment = services.get_assessment(subject)
    if assessment is None:
        messages.error(request, "There is no eligibility assessment to confirm yet.")
        return redirect("eligibility:detail", identifier)
    evaluation = services.evaluate_eligibility(assessment)
    form = ScreenFailureForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        signature = run_service(
            form,
            lambda: services.confirm_screen_failure(
                assessment,
                user=request.user,
                password=form.cleaned_data["password"],
                on_date=form.cleaned_data["on_date"],
            ),
        )
        if signature:
            messages.success(request, f"Screen failure confirmed for {subject}.")
            return redirect(subject)
    return form_page(
        request,
        form,
        f"Confirm screen failure — {subject}",
        subject,
        intro=f'{evaluation.summary()} By signing you state: "{services.SCREEN_FAILURE_MEANING}"',
        submit_label="Sign and confirm screen failure",
        cancel_url=assessment.get_absolute_url(),
    )
