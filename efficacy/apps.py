from core.apps import ProjectAppConfig


class EfficacyConfig(ProjectAppConfig):
    default = True
    name = "efficacy"
    verbose_name = "Efficacy: RECIST v1.1 tumor assessments"
    subject_panel = "efficacy.views.subject_panel"
    # The visit calendar's facts, many subjects at once (treatment.selectors.calendars).
    treatment_calendar_facts = "efficacy.selectors.calendar_facts"
