from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class EligibilityConfig(ProjectAppConfig):
    default = True
    name = "eligibility"
    verbose_name = "Eligibility"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
