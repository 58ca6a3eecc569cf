from core.apps import ProjectAppConfig


class EfficacyConfig(ProjectAppConfig):
    default = True
    name = "efficacy"
    verbose_name = "Efficacy: RECIST v1.1 tumor assessments"
    subject_panel = "efficacy.views.subject_panel"
    # The visit calendar's facts (treatment.selectors.subject_calendar).
    treatment_calendar_facts = "efficacy.selectors.calendar_facts"
