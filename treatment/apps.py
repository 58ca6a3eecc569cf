from core.apps import ProjectAppConfig


class TreatmentConfig(ProjectAppConfig):
    default = True
    name = "treatment"
    verbose_name = "Treatment: visit schedule and study drug exposure"
    subject_panel = "treatment.views.subject_panel"
