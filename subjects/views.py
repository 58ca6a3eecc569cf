"""Site-staff web forms for subjects. Rules live in ``services``; views only call them."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render

from core import access
from core.forms import run_service
from core.pages import form_page, save_form
from core.panels import field_flags, subject_panels

from . import selectors, services
from .forms import ConsentForm, DeleteSubjectForm, DemographicsForm, RegisterSubjectForm, StatusForm
from .models import Subject, SubjectStatus
from .pages import data_entry_page
from .selectors import visible_subject

# Subjects a page of the list shows: a page renders within twice the demo's, whatever the study.
PAGE_SIZE = 25


@login_required
def subject_list(request):
    status = request.GET.get("status", "")
    q = request.GET.get("q", "").strip()
    subjects = selectors.subject_list(request.user, status=status, q=q)
    page = Paginator(subjects, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "subjects/subject_list.html",
        {"page": page, "statuses": SubjectStatus.choices, "status": status, "q": q},
    )


@login_required
def subject_detail(request, identifier):
    """The subject, the panels of the CRF apps above (``core.panels``), the whole audit trail."""
    subject = visible_subject(request.user, identifier)
    return render(
        request,
        "subjects/subject_detail.html",
        {
            "subject": subject,
            "panels": subject_panels(request, subject),
            "status_changes": services.allowed_status_changes(subject),
            "history": selectors.subject_audit_trail(
                subject, request.user, record_type=request.GET.get("record", "")
            ),
            "record_types": selectors.audit_record_types(),
            "record_type": request.GET.get("record", ""),
        },
    )


@login_required
def register(request):
    if not access.can_register_subjects(request.user):
        messages.error(request, "Only site staff and investigators register subjects.")
        return redirect("subjects:list")
    form = RegisterSubjectForm(request.POST or None, user=request.user)
    if request.method == "POST" and not form.is_repeat(request.user) and form.is_valid():
        data = form.cleaned_data
        subject = form.save_once(
            request.user,
            lambda: services.register_subject(
                user=request.user,
                site=data["site"],
                screening_number=data["screening_number"],
                screening_date=data["screening_date"],
                initials=data["initials"],
                date_of_birth=data["date_of_birth"],
                age_at_screening=data["age_at_screening"],
                sex=data["sex"],
            ),
        )
        if subject:
            messages.success(request, f"Subject {subject.subject_identifier} registered.")
            return redirect(subject)
    if form.repeat_of is not None:  # a double click: the first click registered them
        messages.info(request, form.SAVED_BEFORE)
        return redirect(form.repeat_of or "subjects:list")
    return form_page(
        request,
        form,
        "Register a screened patient",
        intro="The subject identifier is assigned when you save.",
        cancel_url="/subjects/",
    )


@data_entry_page
def consent(request, subject):
    correcting = subject.is_consented
    initial = {"consent_date": subject.consent_date, "consent_version": subject.consent_version}
    form = ConsentForm(request.POST or None, initial=initial, correcting=correcting)
    if saved := save_form(
        request,
        form,
        save=lambda: services.record_consent(
            subject,
            user=request.user,
            consent_date=form.cleaned_data["consent_date"],
            consent_version=form.cleaned_data["consent_version"],
            reason=form.cleaned_data.get("reason", ""),
        ),
        saved_message="Informed consent recorded.",
        done_url=subject,
    ):
        return saved
    return form_page(
        request, form, f"Informed consent — {subject}", subject, flags=field_flags(request, subject)
    )


# The form shows the direct identifiers: only the site's own staff see it.
@data_entry_page
def edit_demographics(request, subject):
    form = DemographicsForm(request.POST or None, instance=subject)
    if request.method == "POST" and form.is_valid():
        changes = {f: form.cleaned_data[f] for f in form.changed_data if f != "reason"}
        fresh = Subject.objects.get(pk=subject.pk)  # the form already wrote into ``subject``
        done = run_service(
            form,
            lambda: services.update_demographics(
                fresh, user=request.user, reason=form.cleaned_data["reason"], **changes
            ),
        )
        if done:
            messages.success(request, "Changes saved.")
            return redirect(fresh)
    return form_page(
        request,
        form,
        f"Edit screening data — {subject}",
        subject,
        flags=field_flags(request, subject),
    )


@data_entry_page
def change_status(request, subject):
    choices = services.allowed_status_changes(subject)
    if not choices:
        messages.error(request, f"{subject} is {subject.get_status_display().lower()}: final.")
        return redirect(subject)
    form = StatusForm(request.POST or None, choices=choices)
    if saved := save_form(
        request,
        form,
        save=lambda: services.change_status(
            subject,
            form.cleaned_data["status"],
            user=request.user,
            reason=form.cleaned_data["reason"],
            on_date=form.cleaned_data["on_date"],
        ),
        # Read after the change: the service moved ``subject`` to its new status.
        saved_message=lambda _: f"Status is now {subject.get_status_display().lower()}.",
        done_url=subject,
    ):
        return saved
    return form_page(
        request,
        form,
        f"Change status — {subject}",
        subject,
        intro=f"Current status: {subject.get_status_display()}.",
        flags=field_flags(request, subject),
    )


@data_entry_page
def delete(request, subject):
    form = DeleteSubjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        identifier = subject.subject_identifier
        if run_service(
            form,
            lambda: (
                services.delete_subject(
                    subject, user=request.user, reason=form.cleaned_data["reason"]
                )
                or True
            ),
        ):
            messages.success(request, f"Subject {identifier} deleted.")
            return redirect("subjects:list")
    return form_page(
        request,
        form,
        f"Delete {subject} (registered in error)",
        subject,
        submit_label="Delete",
        intro="Only a subject still in screening can be deleted. The audit trail keeps its record.",
    )
