from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class AdverseEventsConfig(ProjectAppConfig):
    default = True
    name = "adverse_events"
    verbose_name = "Adverse events"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
