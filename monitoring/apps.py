from core.apps import ProjectAppConfig


class MonitoringConfig(ProjectAppConfig):
    default = True
    name = "monitoring"
    verbose_name = "Monitoring and data lock"
    # Every audited write (core.audit) asks this first: locked and frozen data refuse it; a
    # change to verified or signed data clears the verification and voids the signature.
    guard_write = "monitoring.guard.guard_write"
    # core.access asks it whether a record can still be changed (pages then show it read-only).
    lock_state = "monitoring.state.lock_state_of"
    # The edit-check sweep skips locked data (queries.sweep).
    locked_data = "monitoring.state.locked_data"
    subject_panel = "monitoring.views.subject_panel"
    record_field_flags = "monitoring.views.record_field_flags"
