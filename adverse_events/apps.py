from core.apps import ProjectAppConfig


class AdverseEventsConfig(ProjectAppConfig):
    default = True
    name = "adverse_events"
    verbose_name = "Adverse events"
