from core.apps import ProjectAppConfig


class EligibilityConfig(ProjectAppConfig):
    default = True
    name = "eligibility"
    subject_panel = "eligibility.views.subject_panel"
    on_subject_data_change = "eligibility.services.void_signatures_if_subject_data_changed"
    verbose_name = "Eligibility"
