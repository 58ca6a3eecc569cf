from rest_framework.permissions import BasePermission

from accounts.roles import Role
from edc.access import has_role

EXPORT_ROLES = (Role.SPONSOR, Role.STATISTICIAN, Role.DATA_MANAGER, Role.MONITOR)


class CanReadExports(BasePermission):
    """Sponsor, statistician, data manager and monitor read the exports (each within scope)."""

    message = "Your role does not give access to the sponsor exports."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated) and (
            user.is_superuser or has_role(user, *EXPORT_ROLES)
        )
