"""Account rules: who the admin lets in is kept in step with the user's roles.

``is_staff`` is not set by hand: it follows ``core.access.may_use_admin`` (data managers,
statisticians, superusers) whenever a site membership or a user's role groups are saved. The
change is saved like any user change, so the security log records it (``accounts.signals``).
"""

from core import access


def sync_admin_access(user) -> bool:
    """Set ``user.is_staff`` to what the access module answers; save (and so log) only a change.
    Returns whether it changed."""
    access.forget_cached_access(user)  # roles or memberships were just changed
    wanted = access.may_use_admin(user)
    if user.is_staff == wanted:
        return False
    user.is_staff = wanted
    user.save(update_fields=["is_staff"])
    return True
