from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class SurvivalConfig(ProjectAppConfig):
    default = True
    name = "survival"
    verbose_name = "End of treatment, survival follow-up, end of study and the PFS/OS endpoints"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
