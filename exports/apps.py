from core.apps import ProjectAppConfig


class ExportsConfig(ProjectAppConfig):
    default = True
    name = "exports"
    verbose_name = "Sponsor exports"
