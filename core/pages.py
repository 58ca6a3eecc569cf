"""Page helpers shared by the site-staff web forms."""

from __future__ import annotations

from django.shortcuts import render


def form_page(request, form, heading, subject=None, **extra):
    """A page with one form (``form_page.html``); back to the subject by default."""
    context = {"form": form, "heading": heading, "subject": subject, **extra}
    if subject is not None:
        context.setdefault("cancel_url", subject.get_absolute_url())
    return render(request, "form_page.html", context)
