"""The access module's questions for templates: ``{% load access %}``, then
``{% if user|can_enter_data:subject %}`` or ``{% if user|can_read_exports %}``.
Templates ask these filters and nothing else about roles; each filter looks its question up in
``core.access`` when it runs, so the module stays the one answer."""

from django import template

from core import access

register = template.Library()

# Questions about a record (``user|question:record``) and about the user alone.
ABOUT_A_RECORD = (
    "can_view",
    "can_enter_data",
    "can_randomize",
    "can_sign_eligibility",
    "can_raise_query",
    "can_answer_query",
)
ABOUT_THE_USER = (
    "can_read_exports",
    "is_statistician",
    "can_see_efficacy_by_arm",
    "sees_direct_identifiers",
    "can_register_subjects",
    "may_use_admin",
)


def _about_a_record(name):
    def question(user, record):
        return getattr(access, name)(user, record)

    return question


def _about_the_user(name):
    def question(user):
        return getattr(access, name)(user)

    return question


for _name in ABOUT_A_RECORD:
    register.filter(_name, _about_a_record(_name))
for _name in ABOUT_THE_USER:
    register.filter(_name, _about_the_user(_name))
