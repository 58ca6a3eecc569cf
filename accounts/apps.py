from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accounts"
    verbose_name = "Accounts and security log"

    def ready(self):
        from simple_history.signals import pre_create_historical_record

        from edc.audit import install_append_only_triggers, refuse_change_without_reason

        from . import signals  # noqa: F401  (login and user-change receivers)
        from .roles import sync_role_permissions

        pre_create_historical_record.connect(
            refuse_change_without_reason, dispatch_uid="edc_reason_required"
        )

        def after_all_apps_migrated(sender, using="default", **kwargs):
            # post_migrate is sent once per app; act once, after the last app's permissions exist.
            with_models = [a for a in apps.get_app_configs() if a.models_module is not None]
            if sender.label != with_models[-1].label:
                return
            sync_role_permissions()
            install_append_only_triggers(using=using)

        self._after_migrate = after_all_apps_migrated  # keep a strong reference
        post_migrate.connect(after_all_apps_migrated, dispatch_uid="edc_after_migrate")
