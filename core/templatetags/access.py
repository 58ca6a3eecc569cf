"""The access module's questions for templates: ``{% load access %}``, then
``{% if user|can_enter_data:subject %}`` or ``{% if user|can_read_exports %}``.
Templates ask these filters and nothing else about roles."""

from django import template

from core import access

register = template.Library()

for _question in (
    access.can_view,
    access.can_enter_data,
    access.can_randomize,
    access.can_sign_eligibility,
    access.can_raise_query,
    access.can_read_exports,
    access.is_statistician,
    access.sees_direct_identifiers,
    access.can_register_subjects,
):
    register.filter(_question.__name__, _question)
