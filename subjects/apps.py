from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class SubjectsConfig(ProjectAppConfig):
    default = True
    name = "subjects"
    verbose_name = "Sites and subjects"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
