from core.apps import ProjectAppConfig


class SurvivalConfig(ProjectAppConfig):
    default = True
    name = "survival"
    subject_panel = "survival.views.subject_panel"
    # The visit calendar's facts, many subjects at once (treatment.selectors.calendars).
    treatment_calendar_facts = "survival.selectors.calendar_facts"
    verbose_name = "End of treatment, survival follow-up, end of study and the PFS/OS endpoints"
