"""What CRF templates show beside a field: ``{% load crf %}``, then
``{{ flags|flag_for:field.name }}`` next to each field and ``{{ flags|flag_for:"" }}`` (the
record as a whole) at the top. ``flags`` is ``core.panels.field_flags(request, record)``: HTML
the apps above contribute (the data queries' markers), already escaped where it needs to be."""

from django import template

register = template.Library()


@register.filter
def flag_for(flags, name):
    """The flags of field ``name`` ("" when there are none, or no ``flags`` at all)."""
    if not flags:
        return ""
    return flags.get(name, "")
