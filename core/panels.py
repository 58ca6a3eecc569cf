"""The subject page is assembled from panels that the apps above ``subjects`` contribute.

An app contributes a panel by naming, in its AppConfig, ``subject_panel = "app.views.function"``:
a function ``(request, subject) -> (template name, context)``. Panels appear in the order of
``INSTALLED_APPS`` (the order of the layers), so a CRF added later shows on the subject page
without a change to ``subjects``.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from .registry import app_hooks


def subject_panels(request, subject) -> list[SafeString]:
    """The rendered panels of every app that contributes one."""
    rendered = []
    for panel in app_hooks("subject_panel"):
        template_name, context = panel(request, subject)
        rendered.append(render_to_string(template_name, context, request=request))
    return rendered
