"""Page helpers shared by the site-staff web forms."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from .audit import history_rows
from .errors import AccessDenied
from .forms import run_service
from .panels import field_flags


def form_page(request, form, heading, subject=None, **extra):
    """A page with one form (``form_page.html``); back to the subject by default."""
    context = {"form": form, "heading": heading, "subject": subject, **extra}
    if subject is not None:
        context.setdefault("cancel_url", subject.get_absolute_url())
    return render(request, "form_page.html", context)


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


def save_record_edit(request, form, *, save, saved_message, done_url):
    """The POST of an edit form: ``save()`` through ``run_service``, then ``saved_message``
    (text, or result -> text) and a redirect to ``done_url``. None: show the form (again)."""
    if request.method == "POST" and form.is_valid():
        done = run_service(form, save)
        if done:
            messages.success(request, _text(saved_message, done))
            return redirect(done_url)
    return None


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
