from django.apps import AppConfig


class AdverseEventsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "adverse_events"
    verbose_name = "Adverse events"
