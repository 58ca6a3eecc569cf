from django.db.models.signals import post_migrate

from core.apps import ProjectAppConfig, after_last_app_migrated
from core.contributions import AppContributions


class AccountsConfig(ProjectAppConfig):
    default = True
    name = "accounts"
    verbose_name = "Accounts and security log"

    def ready(self):
        # Receivers: the password check, the security log, the session's activity at login.
        from . import passwords, sessions, signals  # noqa: F401
        from .roles import sync_role_permissions

        self._sync_roles = after_last_app_migrated(sync_role_permissions)
        post_migrate.connect(self._sync_roles, dispatch_uid="edc_sync_role_permissions")

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
