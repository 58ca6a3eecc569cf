from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class QueriesConfig(ProjectAppConfig):
    default = True
    name = "queries"
    verbose_name = "Data queries"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
