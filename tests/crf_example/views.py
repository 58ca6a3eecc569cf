"""The vital signs pages: new and edit, both through ``core.pages``. The subject is found within
the user's sites (``visible_subject``: another site's is a 404), the record within the subject."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404

from core import access
from core.pages import edit_record_page, new_record_page, refuse_read_only, saved_with_reason
from subjects.selectors import visible_subject

from . import services
from .forms import NewVitalSignsForm, VitalSignsForm
from .models import VitalSigns


@login_required
def new(request, identifier):
    subject = visible_subject(request.user, identifier)
    if refused := refuse_read_only(request, subject, access.require_data_entry):
        return refused
    form = NewVitalSignsForm(request.POST or None)
    return new_record_page(
        request,
        form,
        heading=f"Vital signs — {subject}",
        subject=subject,
        done_url=subject.get_absolute_url(),
        save=lambda: services.save_vital_signs(subject, user=request.user, **form.service_data()),
        saved_message="Vital signs recorded.",
    )


@login_required
def edit(request, identifier, pk):
    subject = visible_subject(request.user, identifier)
    record = get_object_or_404(VitalSigns, subject=subject, pk=pk)
    if refused := refuse_read_only(
        request, subject, lambda user, _: access.require_data_entry(user, record)
    ):
        return refused
    form = VitalSignsForm(
        request.POST or None, initial=VitalSignsForm.initial_from(record), editing=True
    )
    return edit_record_page(
        request,
        form,
        record=record,
        heading=f"{record}",
        subject=subject,
        done_url=subject.get_absolute_url(),
        save=saved_with_reason(request, form, services.save_vital_signs, subject, record=record),
        saved_message="Vital signs updated.",
    )
