"""Page helpers shared by the site-staff web forms."""

from __future__ import annotations

from collections.abc import Sequence

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import redirect, render

from . import registry
from .audit import history_rows, require_visible_reason
from .contributions import RecordAction
from .errors import AccessDenied, DomainError
from .forms import add_errors, run_service
from .panels import field_flags


def form_page(request, form, heading, subject=None, *, template="form_page.html", **extra):
    """A page with one form (``template``: ``form_page.html`` or one extending it); back to the
    subject by default."""
    context = {"form": form, "heading": heading, "subject": subject, **extra}
    if subject is not None:
        context.setdefault("cancel_url", subject.get_absolute_url())
    return render(request, template, context)


def refuse_read_only(request, subject, require):
    """The guard of every page with a write form: a user the access module refuses
    (``require(user, subject)``, one of ``access.require_*``) is sent back to the subject's page,
    which shows the data read-only, with the access module's sentence; never a form that the
    service would refuse. ``None`` when they may write."""
    try:
        require(request.user, subject)
    except AccessDenied as exc:
        messages.error(request, f"{exc} You may view {subject}, not change it.")
        return redirect(subject)
    return None


def _text(message, record) -> str:
    return message(record) if callable(message) else message


def save_new_record(request, form, *, save, saved_message, done_url, record_url=None):
    """The POST of a create form (``OneTimeSubmissionMixin``): ``save()`` once, then
    ``saved_message`` (text, or record -> text) and a redirect to ``done_url``; a repeat goes to
    the first one's record (``done_url`` if unknown). None: show the form (again).
    ``record_url``: the record -> its page, for ``save_once``'s ``url_of``."""
    if request.method == "POST" and not form.is_repeat(request.user) and form.is_valid():
        record = form.save_once(request.user, save, url_of=record_url)
        if record:
            messages.success(request, _text(saved_message, record))
            return redirect(done_url)
    if form.repeat_of is not None:
        messages.info(request, form.SAVED_BEFORE)
        return redirect(form.repeat_of or done_url)
    return None


def save_form(request, form, *, save, saved_message, done_url):
    """The POST of a form that writes through a service: ``save()`` through ``run_service`` (a
    refusal shows on the form), then ``saved_message`` (text, or result -> text) and a redirect
    to ``done_url`` (anything ``redirect`` takes). None: show the form (again)."""
    if request.method == "POST" and form.is_valid():
        done = run_service(form, save)
        if done:
            messages.success(request, _text(saved_message, done))
            return redirect(done_url)
    return None


def save_record_edit(request, form, *, save, saved_message, done_url, record=None):
    """The POST of an edit form: ``save()`` through ``run_service``, then ``saved_message``
    (text, or result -> text) and a redirect to ``done_url``. None: show the form (again).
    ``record``: the record the form edits; a POST that also asks the apps above to act on it
    (a query answered beside a field) goes to ``save_with_record_actions``."""
    posting = request.method == "POST"
    if posting and record is not None and (actions := posted_record_actions(request, record)):
        return save_with_record_actions(
            request, form, actions, save=save, saved_message=saved_message
        )
    return save_form(request, form, save=save, saved_message=saved_message, done_url=done_url)


def new_record_page(
    request, form, *, heading, subject, done_url, save, saved_message, record_url=None, **extra
):
    """A CRF's page for a new record: the POST saved once by ``save_new_record`` (back to
    ``done_url``), else ``form_page`` with a cancel link to ``done_url``."""
    if saved := save_new_record(
        request,
        form,
        save=save,
        saved_message=saved_message,
        done_url=done_url,
        record_url=record_url,
    ):
        return saved
    return form_page(request, form, heading, subject, cancel_url=done_url, **extra)


def edit_record_page(
    request, form, *, record, heading, subject, done_url, save, saved_message, **extra
):
    """A CRF record's edit page: the POST saved by ``save_record_edit`` (back to ``done_url``),
    else ``form_page`` with the record's field flags and a cancel link to ``done_url``."""
    if saved := save_record_edit(
        request, form, save=save, saved_message=saved_message, done_url=done_url, record=record
    ):
        return saved
    return form_page(
        request,
        form,
        heading,
        subject,
        cancel_url=done_url,
        flags=field_flags(request, record, form=form),
        **extra,
    )


def saved_with_reason(request, form, service, *args, **kwargs):
    """The ``save`` of an edit form: ``service(*args, **kwargs)`` called, once the form is valid,
    with the user, the form's reason for change and its ``service_data()`` (the audited write
    needs all three)."""
    return lambda: service(
        *args,
        **kwargs,
        user=request.user,
        reason=form.cleaned_data["reason"],
        **form.service_data(),
    )


def posted_record_actions(request, record) -> list[RecordAction]:
    """What this POST of ``record``'s edit form asks the apps above to do with it: their
    ``record_form_action`` (``core.contributions.RecordFormAction``: an action, a list of
    actions or None; ``queries``: the answers given beside fields). An action's ``run()`` makes
    its write (refused with a ``DomainError``) and returns the sentence to show; its ``field`` is
    where a refusal shows."""
    actions: list[RecordAction] = []
    for hook in registry.record_form_actions():
        asked = hook(request, record)
        if isinstance(asked, Sequence):
            actions.extend(asked)
        elif asked is not None:
            actions.append(asked)
    return actions


def unsaved_changes(form) -> list[str]:
    """The fields of a bound edit form whose value differs from the record's: Django's
    ``changed_data`` less the reason for change (it is about the change) and less a value that
    differs only in how it is written (a lab value kept as the text reported, "3.2", and read
    back by the form as the number 3.2)."""
    return [
        name
        for name in form.changed_data
        if require_visible_reason not in form.fields[name].validators and _differs(form[name])
    ]


def _differs(bound) -> bool:
    try:
        return bound.field.to_python(bound.initial) != bound.field.to_python(bound.data)
    except (ValidationError, TypeError, ValueError):
        return True


def _sentence(error) -> str:
    return error.message if isinstance(error, DomainError) else " ".join(error.messages)


def save_with_record_actions(
    request, form, actions, *, save, saved_message, changed=None, is_valid=None
):
    """A CRF form sent with an action at one of its fields (a data query answered beside it):
    the form's unsaved changes, if any, saved (``save()``, with the form's reason for change)
    and the actions run, in one transaction: both or neither, never an answer saying "corrected"
    while the correction is thrown away. An unchanged form: the actions alone, no reason for
    change asked. Done: back to the same page, which shows both. None: the form is shown again
    with its errors (a refusal of an action on its field), the values as sent.

    A page whose form has parts of its own (rows of a formset) says what changed (``changed``,
    default ``unsaved_changes(form)``) and validates them all (``is_valid``, default the
    form's)."""
    changed = unsaved_changes(form) if changed is None else changed
    if changed and not (is_valid or form.is_valid)():
        return None

    running = None  # the action that refused, if one did: its refusal shows at its field

    def together():
        nonlocal running
        with transaction.atomic():
            result = save() if changed else None
            done = []
            for running in actions:
                done.append(running.run())
            return result, done

    try:
        result, done = together()
    except (DomainError, ValidationError) as exc:
        if not changed:  # nothing typed is lost: the page again, with why
            messages.error(request, _sentence(exc))
            return redirect(request.get_full_path())
        add_errors(form, exc, running.field if running is not None else None)
        return None
    sentences = ([_text(saved_message, result)] if changed else []) + done
    messages.success(request, " ".join(sentences))
    return redirect(request.get_full_path())


def read_only_record_page(request, template, *, subject, name, record, history=None, **extra):
    """The page of ``record`` for a user who may view but not change it: ``template`` gets the
    subject, the record as ``name``, its audit trail (default: the record's own history), its
    field flags and ``extra``."""
    if history is None:
        history = history_rows(record.history.select_related("history_user"))
    context = {
        "subject": subject,
        name: record,
        "history": history,
        "flags": field_flags(request, record),
        **extra,
    }
    return render(request, template, context)
