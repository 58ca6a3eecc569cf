"""The guard of a page that writes a subject's data, for the views of every CRF app."""

from __future__ import annotations

import functools

from django.contrib.auth.decorators import login_required

from core import access
from core.pages import refuse_read_only

from .selectors import visible_subject


def data_entry_page(view):
    """A page with a write form on one subject: another site's subject is a 404
    (``visible_subject``), and a user who may see the subject but not enter its data is sent
    back to it (``refuse_read_only``). The view is called with the subject, not its identifier."""

    @login_required
    @functools.wraps(view)
    def page(request, identifier, *args, **kwargs):
        subject = visible_subject(request.user, identifier)
        if refused := refuse_read_only(request, subject, access.require_data_entry):
            return refused
        return view(request, subject, *args, **kwargs)

    return page
