"""Page helpers shared by the site-staff web forms."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from .errors import AccessDenied


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
