from core.apps import ProjectAppConfig


class RandomizationConfig(ProjectAppConfig):
    default = True
    name = "randomization"
    verbose_name = "Randomization"
