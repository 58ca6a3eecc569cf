"""Admin for data managers: the end of treatment, survival follow-up and end of study records
with filters and their history. Read-only: the sites enter and change them on their forms
(through ``services``, which drive the subject's status)."""

from django.contrib import admin

from core.admin import ReadOnlyAuditedAdmin, ReadOnlyInline

from .models import EndOfStudy, EndOfTreatment, SubsequentTherapy, SurvivalFollowUp
from .services import EOS_FIELDS, EOT_FIELDS, FOLLOW_UP_FIELDS


@admin.register(EndOfTreatment)
class EndOfTreatmentAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "last_dose_date", "end_reason", "adverse_event")
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "end_reason")
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site", "adverse_event__term")
    fields = ("subject", *EOT_FIELDS)


class TherapyInline(ReadOnlyInline):
    model = SubsequentTherapy
    fields = ("agent", "start_date")


@admin.register(SurvivalFollowUp)
class SurvivalFollowUpAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "subject",
        "contact_number",
        "contact_date",
        "vital_status",
        "last_known_alive_date",
    )
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "vital_status")
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    fields = ("subject", "contact_number", *FOLLOW_UP_FIELDS)
    readonly_fields = ("contact_number",)
    inlines = [TherapyInline]


@admin.register(SubsequentTherapy)
class SubsequentTherapyAdmin(ReadOnlyAuditedAdmin):
    list_display = ("follow_up", "agent", "start_date")
    search_fields = ("follow_up__subject__subject_identifier", "agent")
    list_select_related = ("follow_up__subject__site",)
    fields = ("follow_up", "agent", "start_date")


@admin.register(EndOfStudy)
class EndOfStudyAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "end_date", "end_reason", "death_date", "death_cause")
    list_filter = (
        ("subject__site", admin.RelatedOnlyFieldListFilter),
        "end_reason",
        "death_cause",
    )
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    fields = ("subject", *EOS_FIELDS)
