from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class MonitoringConfig(ProjectAppConfig):
    default = True
    name = "monitoring"
    verbose_name = "Monitoring and data lock"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
