from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class TreatmentConfig(ProjectAppConfig):
    default = True
    name = "treatment"
    verbose_name = "Treatment: visit schedule and study drug exposure"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
