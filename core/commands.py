"""The user a management command acts as (its ``--user``): looked up by username, and an unknown
name stops the command with a sentence rather than a traceback."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from . import access


def named_user(username: str):
    User = get_user_model()
    user = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
    if user is None:
        raise CommandError(f"There is no user {username!r}.")
    return user


def export_reader(username: str):
    """The named user, who must be active and allowed to read the sponsor exports."""
    user = named_user(username)
    if not user.is_active or not access.can_read_exports(user):
        raise CommandError(f"{username} may not read the sponsor exports.")
    return user
