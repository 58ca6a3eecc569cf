from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class EfficacyConfig(ProjectAppConfig):
    default = True
    name = "efficacy"
    verbose_name = "Efficacy: RECIST v1.1 tumor assessments"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
