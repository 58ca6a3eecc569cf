"""The role groups hold exactly the permissions the apps declare.

Groups are created by a data migration; ``sync_role_permissions`` (run after every ``migrate``)
gives each group exactly the permissions the project apps declare for it (their
``role_permissions``, ``core.contributions``): an app that adds models declares its permissions
in its own ``contributions`` module and nowhere else.
"""

from core import registry
from core.roles import Role


def role_permissions() -> dict[str, list[str]]:
    """Role -> the permissions its group holds: every project app's, in layer order."""
    joined = registry.role_permissions()
    return {role: joined.get(role, []) for role in Role.values}


def sync_role_permissions(**kwargs) -> None:
    """post_migrate receiver: each role group holds exactly the permissions the apps declare.
    A change it makes is in the security log with this module as its reason."""
    from django.contrib.auth.models import Group, Permission

    from .events import change_reason

    with change_reason("Role permissions set by migrate from accounts/roles.py"):
        _sync_role_permissions(Group, Permission)


def _sync_role_permissions(Group, Permission) -> None:
    for role, perm_names in role_permissions().items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in perm_names:
            app_label, codename = name.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:  # an app migrated later gets its permissions on its migrate
                wanted.append(perm)
        group.permissions.set(wanted)
