from core.apps import ProjectAppConfig


class RandomizationConfig(ProjectAppConfig):
    default = True
    name = "randomization"
    subject_panel = "randomization.views.subject_panel"
    verbose_name = "Randomization"
