from core.apps import ProjectAppConfig


class QueriesConfig(ProjectAppConfig):
    default = True
    name = "queries"
    verbose_name = "Data queries"
    subject_panel = "queries.views.subject_panel"
    # After a transaction that changed a subject's CRF data commits, its edit checks run.
    after_subject_change = "queries.scheduling.subject_changed"
    # The open queries on a record's fields, for the CRF pages of the apps below.
    record_field_flags = "queries.views.record_field_flags"
    # An answer given beside a field of a CRF form, saved with the form (core.pages).
    record_form_action = "queries.views.posted_answer"
