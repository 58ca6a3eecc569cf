"""Scoped reads of subjects: every page, API view and app above reads subjects through these."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils.text import capfirst

from core import access
from core.audit import subject_history_rows, subject_models

from .models import Subject, SubjectStatus


def visible_subjects(user) -> QuerySet:
    return access.scope_to_user(Subject.objects.select_related("site"), user)


def visible_subject(user, identifier: str) -> Subject:
    """The subject, if the user may see it: another site's subject is a 404, not a 403."""
    return get_object_or_404(visible_subjects(user), subject_identifier=identifier)


def subject_list(user, *, status: str = "", q: str = "") -> QuerySet:
    """The user's subjects, narrowed by status and by a search on identifier or screening no.
    (the screening number only for users who see it: a match would tell the others whose
    number it is)."""
    # The identifier's order is the casebook's (site code, then the sequence), read down its
    # unique index: a page of the list reads its own rows, not the whole table sorted.
    subjects = visible_subjects(user).order_by("subject_identifier")
    if status in SubjectStatus.values:
        subjects = subjects.filter(status=status)
    if q:
        found = Q(subject_identifier__icontains=q)
        if access.sees_direct_identifiers(user):
            found |= Q(screening_number__icontains=q)
        subjects = subjects.filter(found)
    return subjects


def audit_record_types() -> list[tuple[str, str]]:
    """(``app_label.model``, name) of every kind of record a subject's audit trail holds."""
    return [
        (model._meta.label_lower, capfirst(str(model._meta.verbose_name_plural)))
        for model in subject_models()
    ]


def subject_audit_trail(subject: Subject, user, *, record_type: str = "") -> list[dict]:
    """Every change to every record of the subject (or to its records of ``record_type`` alone,
    one of ``audit_record_types``), newest first; the direct identifiers' values masked for
    users who may not see them."""
    hidden = () if access.sees_direct_identifiers(user) else access.DIRECT_IDENTIFIER_FIELDS
    if record_type not in dict(audit_record_types()):
        record_type = ""
    return subject_history_rows(subject, hidden=hidden, only=record_type)
