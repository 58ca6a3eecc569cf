"""Site-staff pages of the end of treatment, the survival follow-up and the end of study, the
subject-page panel, and the statistician's endpoints report (PFS/OS Kaplan-Meier by arm).

Every CRF page finds the subject through ``subjects.selectors.visible_subject`` (another site's
subject is a 404). A user who may view but not enter data sees the record read-only, never a
form. The endpoints report is for ``access.can_see_efficacy_by_arm`` (statisticians): anyone else
gets a 403 with a sentence.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render

from core import access
from core.audit import history_rows
from core.forms import run_service
from core.pages import (
    form_page,
    refuse_read_only,
    save_new_record,
    save_record_edit,
    saved_with_reason,
)
from core.panels import field_flags
from randomization import selectors as randomization_selectors
from subjects.pages import data_entry_page
from subjects.selectors import visible_subject

from . import charts, selectors, services
from .forms import (
    EndOfStudyForm,
    EndOfTreatmentForm,
    FollowUpForm,
    NewEndOfStudyForm,
    NewEndOfTreatmentForm,
    NewFollowUpForm,
)
from .models import SubsequentTherapy, VitalStatus


def subject_panel(request, subject):
    """The end of treatment / survival panel of the subject page (``core.panels``)."""
    return "survival/_subject_panel.html", {
        "subject": subject,
        "eot": selectors.end_of_treatment(subject),
        "follow_ups": selectors.subject_follow_ups(subject),
        "eos": selectors.end_of_study(subject),
        "randomized": randomization_selectors.randomization_date(subject) is not None,
    }


def _trail(record, *extra_models):
    rows = history_rows(record.history.select_related("history_user").order_by("-history_date"))
    for records in extra_models:
        rows.extend(history_rows(records))
    return sorted(rows, key=lambda r: r["when"], reverse=True)


def _facts(record, names) -> list[tuple[str, object]]:
    facts = []
    for name in names:
        field = record._meta.get_field(name)
        value = getattr(record, name)
        if field.choices:
            value = getattr(record, f"get_{name}_display")()
        facts.append((str(field.verbose_name).capitalize(), value))
    return facts


def _read_only(request, subject, record, heading, facts, history):
    return render(
        request,
        "survival/record_detail.html",
        {
            "subject": subject,
            "heading": heading,
            "facts": facts,
            "history": history,
            "flags": field_flags(request, record),
        },
    )


def _form(request, form, heading, subject, *, record=None, history=None):
    """A CRF form page (``form_page``) with the record's audit trail below it."""
    return form_page(
        request,
        form,
        heading,
        subject,
        template="survival/form.html",
        flags=field_flags(request, record, form=form),
        history=history,
    )


def _one_record_page(
    request, subject, record, *, heading, form_class, new_form_class, record_fn, update_fn, names
):
    """The page of a record a subject has at most one of (end of treatment, end of study)."""
    if record is not None and not access.can_enter_data(request.user, subject):
        return _read_only(request, subject, record, heading, _facts(record, names), _trail(record))
    if record is None:
        if refused := refuse_read_only(request, subject, access.require_data_entry):
            return refused
        form = new_form_class(request.POST or None, subject=subject)
        if saved := save_new_record(
            request,
            form,
            save=lambda: record_fn(subject, user=request.user, **form.service_data()),
            saved_message=f"{heading} recorded.",
            done_url=subject,
        ):
            return saved
        return _form(request, form, heading, subject)
    form = form_class(
        request.POST or None, subject=subject, editing=True, initial=form_class.initial_from(record)
    )
    if saved := save_record_edit(
        request,
        form,
        save=saved_with_reason(request, form, update_fn, record),
        saved_message=f"{heading} updated.",
        done_url=subject,
        record=record,
    ):
        return saved
    return _form(request, form, heading, subject, record=record, history=_trail(record))


@login_required
def end_of_treatment(request, identifier):
    subject = visible_subject(request.user, identifier)
    return _one_record_page(
        request,
        subject,
        selectors.end_of_treatment(subject),
        heading=f"End of treatment — {subject}",
        form_class=EndOfTreatmentForm,
        new_form_class=NewEndOfTreatmentForm,
        record_fn=services.record_end_of_treatment,
        update_fn=services.update_end_of_treatment,
        names=services.EOT_FIELDS,
    )


@login_required
def end_of_study(request, identifier):
    subject = visible_subject(request.user, identifier)
    return _one_record_page(
        request,
        subject,
        selectors.end_of_study(subject),
        heading=f"End of study — {subject}",
        form_class=EndOfStudyForm,
        new_form_class=NewEndOfStudyForm,
        record_fn=services.record_end_of_study,
        update_fn=services.update_end_of_study,
        names=services.EOS_FIELDS,
    )


def _follow_up_done(request, subject, fu, verb):
    messages.success(request, f"Survival contact {fu.contact_number} {verb}.")
    if fu.vital_status == VitalStatus.DEAD and selectors.end_of_study(subject) is None:
        messages.info(
            request,
            "The subject has died: record the end of study with the date and cause of death.",
        )
    return redirect(subject)


@data_entry_page
def follow_up_new(request, subject):
    form = NewFollowUpForm(request.POST or None, subject=subject)
    if request.method == "POST" and not form.is_repeat(request.user) and form.is_valid():
        fu = form.save_once(
            request.user,
            lambda: services.record_follow_up(
                subject, user=request.user, therapies=form.therapies(), **form.service_data()
            ),
        )
        if fu:
            return _follow_up_done(request, subject, fu, "recorded")
    if form.repeat_of is not None:
        messages.info(request, form.SAVED_BEFORE)
        return redirect(form.repeat_of or subject.get_absolute_url())
    return _form(request, form, f"Survival follow-up contact — {subject}", subject)


@login_required
def follow_up(request, identifier, number):
    subject, fu = selectors.visible_follow_up(request.user, identifier, number)
    heading = f"Survival contact {fu.contact_number} — {subject}"
    therapies = list(fu.therapies.all())
    history = _trail(
        fu,
        SubsequentTherapy.history.filter(follow_up_id=fu.pk)
        .select_related("history_user")
        .order_by("-history_date"),
    )
    if not access.can_enter_data(request.user, subject):
        facts = _facts(fu, ("contact_date", "vital_status", "last_known_alive_date"))
        facts += [("Subsequent therapy", str(t)) for t in therapies]
        return _read_only(request, subject, fu, heading, facts, history)
    form = FollowUpForm(
        request.POST or None,
        subject=subject,
        editing=True,
        therapies=therapies,
        initial=FollowUpForm.initial_from(fu),
    )
    if request.method == "POST" and form.is_valid():
        done = run_service(
            form,
            lambda: services.update_follow_up(
                fu,
                user=request.user,
                reason=form.cleaned_data["reason"],
                therapies=form.therapies(),
                **form.service_data(),
            ),
        )
        if done:
            return _follow_up_done(request, subject, fu, "updated")
    return _form(request, form, heading, subject, record=fu, history=history)


@login_required
def endpoints_report(request):
    """PFS and OS by arm: Kaplan-Meier curves, medians, events, numbers at risk."""
    if not access.can_see_efficacy_by_arm(request.user):
        raise PermissionDenied(
            "The endpoints report shows efficacy by arm: it is for the statisticians only."
        )
    cutoff = selectors.data_cutoff()
    summaries = selectors.endpoint_summaries(request.user, cutoff=cutoff)
    return render(
        request,
        "survival/endpoints.html",
        {
            "cutoff": cutoff,
            "summaries": [(s, charts.km_chart(s)) for s in summaries],
        },
    )
