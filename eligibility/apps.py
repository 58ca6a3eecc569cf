from core.apps import ProjectAppConfig


class EligibilityConfig(ProjectAppConfig):
    default = True
    name = "eligibility"
    verbose_name = "Eligibility"
