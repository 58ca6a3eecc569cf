from core.apps import ProjectAppConfig


class EligibilityConfig(ProjectAppConfig):
    default = True
    name = "eligibility"
    subject_panel = "eligibility.views.subject_panel"
    verbose_name = "Eligibility"
