"""What accounts contributes (``core.contributions``): the data manager reads the security log
and the users in the admin."""

from core.contributions import AppContributions
from core.roles import Role, view_permissions

CONTRIBUTIONS = AppContributions(
    role_permissions={
        Role.DATA_MANAGER: view_permissions("accounts.authevent", "auth.user"),
    },
)
