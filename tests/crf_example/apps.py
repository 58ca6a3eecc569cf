from core.apps import ProjectAppConfig
from core.contributions import AppContributions


class CrfExampleConfig(ProjectAppConfig):
    """A throwaway CRF app (tests/test_adding_a_crf.py installs it for one test): the worked
    example of README's "Adding a CRF"."""

    default = True
    name = "tests.crf_example"
    label = "crf_example"
    verbose_name = "Vital signs (example CRF)"

    def declared_contributions(self) -> AppContributions:
        from .contributions import CONTRIBUTIONS

        return CONTRIBUTIONS
