from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class RandomizationConfig(ProjectAppConfig):
    default = True
    name = "randomization"
    verbose_name = "Randomization"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
