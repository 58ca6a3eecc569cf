"""The subject page is assembled from panels that the apps above ``subjects`` contribute.

Each app declares a ``subject_panel`` and ``record_field_flags`` in its ``contributions``; they
are joined in layer order, so a CRF added later shows on the subject page, and its fields carry
the data queries' markers, without a change to ``subjects`` or to the CRF templates' tags.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

from . import registry


def subject_panels(request, subject) -> list[SafeString]:
    """The rendered panels of every app that contributes one."""
    rendered = []
    for panel in registry.subject_panels():
        template_name, context = panel(request, subject)
        rendered.append(render_to_string(template_name, context, request=request))
    return rendered


def field_flags(request, record, *, form=None) -> dict[str, SafeString]:
    """What the apps above show beside each field of ``record`` on a CRF page (``""``: about the
    record as a whole, shown at the top of the page). None (no record yet): nothing.
    ``form``: the record's edit form the page shows; the flags of its fields sit inside it and
    its POST carries their inputs (``core.pages.save_record_edit`` runs what they ask with the
    form's save)."""
    if record is None or record.pk is None:
        return {}
    parts: dict[str, list[str]] = {}
    for hook in registry.record_field_flags():
        for name, html in hook(request, record, form=form).items():
            parts.setdefault(name, []).append(conditional_escape(html))
    return {name: mark_safe("".join(htmls)) for name, htmls in parts.items()}
