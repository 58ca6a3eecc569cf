from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class DashboardConfig(ProjectAppConfig):
    default = True
    name = "dashboard"
    verbose_name = "Dashboard"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
