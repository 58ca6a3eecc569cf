"""Scoped reads of subjects: every page, API view and app above reads subjects through these."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from core import access
from core.audit import subject_history_rows

from .models import Subject, SubjectStatus


def visible_subjects(user) -> QuerySet:
    return access.scope_to_user(Subject.objects.select_related("site"), user)


def visible_subject(user, identifier: str) -> Subject:
    """The subject, if the user may see it: another site's subject is a 404, not a 403."""
    return get_object_or_404(visible_subjects(user), subject_identifier=identifier)


def subject_list(user, *, status: str = "", q: str = "") -> QuerySet:
    """The user's subjects, narrowed by status and by a search on identifier or screening no."""
    subjects = visible_subjects(user)
    if status in SubjectStatus.values:
        subjects = subjects.filter(status=status)
    if q:
        subjects = subjects.filter(
            Q(subject_identifier__icontains=q) | Q(screening_number__icontains=q)
        )
    return subjects


def subject_audit_trail(subject: Subject, user) -> list[dict]:
    """Every change to every record of the subject, newest first; the direct identifiers'
    values masked for users who may not see them."""
    hidden = () if access.sees_direct_identifiers(user) else access.DIRECT_IDENTIFIER_FIELDS
    return subject_history_rows(subject, hidden=hidden)
