"""The bottom layer's app config, and the base config that makes an app one of the project's
(``core.registry`` reads its flag and its contributions)."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core.exceptions import ImproperlyConfigured
from django.db.models.signals import post_migrate

from .contributions import AppContributions


class ProjectAppConfig(AppConfig):
    """Base of every project app's config. A subclass says ``default = True``: its apps.py holds
    this class too, and Django picks the one config marked default."""

    default_auto_field = "django.db.models.BigAutoField"
    edc_project_app = True
    _contributions: AppContributions | None = None
    _declaring = False

    def contributions(self) -> AppContributions:
        """What this app contributes to the apps below it (``core.registry``), read once."""
        if self._contributions is None:
            if self._declaring:
                raise ImproperlyConfigured(
                    f"{self.label}'s contributions read the registry while they load: a module "
                    "they import reads it at import time (read it in a function instead)."
                )
            self._declaring = True
            try:
                self._contributions = self.declared_contributions()
            finally:
                self._declaring = False
        return self._contributions

    def declared_contributions(self) -> AppContributions:
        """An app that contributes overrides this to return the ``CONTRIBUTIONS`` of its
        ``contributions`` module, imported inside the method: that module imports the app's
        views and models, which load only once the apps are ready."""
        return AppContributions()


def after_last_app_migrated(receiver):
    """Wrap a post_migrate receiver so it acts once per migrate, after the last app with models
    (post_migrate is sent once per app; the permissions and tables of all apps exist by then)."""

    def wrapped(sender, using="default", **kwargs):
        with_models = [a for a in apps.get_app_configs() if a.models_module is not None]
        if sender.label == with_models[-1].label:
            receiver(using=using)

    return wrapped


class CoreConfig(ProjectAppConfig):
    default = True
    name = "core"
    verbose_name = "Core"

    def ready(self):
        from simple_history.signals import pre_create_historical_record

        from .audit import (
            guard_history_paths,
            install_append_only_triggers,
            refuse_change_without_reason,
        )

        pre_create_historical_record.connect(
            refuse_change_without_reason, dispatch_uid="edc_reason_required"
        )
        guard_history_paths()
        self._install_triggers = after_last_app_migrated(install_append_only_triggers)
        post_migrate.connect(self._install_triggers, dispatch_uid="edc_append_only_triggers")
