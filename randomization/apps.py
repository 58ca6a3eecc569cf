from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "randomization"
    verbose_name = "Randomization"
