from core.apps import ProjectAppConfig


class AdverseEventsConfig(ProjectAppConfig):
    default = True
    name = "adverse_events"
    subject_panel = "adverse_events.views.subject_panel"
    verbose_name = "Adverse events"
