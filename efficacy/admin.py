"""Admin for data managers: review baseline lesions and tumor assessments (with the derived and
the investigator's response side by side, filterable where they differ) and their history.
Read-only: the sites enter and correct them on the RECIST forms (through the services)."""

from django.contrib import admin
from django.db.models import F

from core.admin import ReadOnlyAuditedAdmin, ReadOnlyInline

from .models import (
    NonTargetAssessment,
    NonTargetLesion,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)
from .services import DERIVED_FIELDS


class ResponsesDifferFilter(admin.SimpleListFilter):
    title = "investigator vs RECIST 1.1"
    parameter_name = "responses"

    def lookups(self, request, model_admin):
        return [("differ", "Responses differ"), ("agree", "Responses agree")]

    def queryset(self, request, queryset):
        if self.value() == "differ":
            return queryset.exclude(investigator_response=F("derived_response"))
        if self.value() == "agree":
            return queryset.filter(investigator_response=F("derived_response"))
        return queryset


class _LesionRowInline(ReadOnlyInline):
    def get_queryset(self, request):
        return super().get_queryset(request).select_related("lesion")


class MeasurementInline(_LesionRowInline):
    model = TargetMeasurement
    fields = ("lesion", "diameter")


class NonTargetStatusInline(_LesionRowInline):
    model = NonTargetAssessment
    fields = ("lesion", "status")


LESION_FIELDS = ("subject", "number", "organ", "location", "baseline_date", "method")


@admin.register(TargetLesion)
class TargetLesionAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "number", "organ", "location", "diameter", "baseline_date")
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "organ", "method")
    search_fields = ("subject__subject_identifier", "location")
    list_select_related = ("subject__site",)
    fields = (*LESION_FIELDS, "diameter")
    readonly_fields = ("number",)


@admin.register(NonTargetLesion)
class NonTargetLesionAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "number", "organ", "location", "baseline_date")
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "organ", "method")
    search_fields = ("subject__subject_identifier", "location")
    list_select_related = ("subject__site",)
    fields = LESION_FIELDS
    readonly_fields = ("number",)


@admin.register(TumorAssessment)
class TumorAssessmentAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "subject",
        "number",
        "assessment_date",
        "target_sum",
        "derived_response",
        "investigator_response",
        "new_lesions",
    )
    list_filter = (
        ("subject__site", admin.RelatedOnlyFieldListFilter),
        ResponsesDifferFilter,
        "derived_response",
        "investigator_response",
        "new_lesions",
        "method",
    )
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    inlines = [MeasurementInline, NonTargetStatusInline]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "subject",
                    "number",
                    ("assessment_date", "method"),
                    ("new_lesions", "new_lesions_description"),
                    "investigator_response",
                )
            },
        ),
        ("Derived by RECIST 1.1", {"fields": DERIVED_FIELDS}),
    ]
    readonly_fields = ("number", *DERIVED_FIELDS)
