"""Admin for data managers: review cycles, IV doses and sorafenib periods with filters and
their history. Read-only: the sites enter exposure on the treatment pages (through the
services)."""

from django.contrib import admin

from core.admin import ReadOnlyAuditedAdmin, ReadOnlyInline

from .models import Cycle, IvDose, OralDosingPeriod
from .services import DOSE_FIELDS, PERIOD_FIELDS

IV_FIELDS = ("drug", "planned_dose_mg", *DOSE_FIELDS)


class IvDoseInline(ReadOnlyInline):
    model = IvDose
    fields = IV_FIELDS


@admin.register(Cycle)
class CycleAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "number", "day1_date", "nominal_day1", "weight_kg")
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    fields = ("subject", "number", "day1_date", "nominal_day1", "weight_kg")
    readonly_fields = fields  # derived fields too (the history form view builds a form)
    inlines = [IvDoseInline]


@admin.register(IvDose)
class IvDoseAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "cycle",
        "drug",
        "planned_dose_mg",
        "given_dose_mg",
        "administered_date",
        "delayed",
        "interrupted",
        "reduced",
    )
    list_filter = (
        ("cycle__subject__site", admin.RelatedOnlyFieldListFilter),
        "drug",
        "delayed",
        "interrupted",
        "reduced",
    )
    search_fields = ("cycle__subject__subject_identifier",)
    list_select_related = ("cycle__subject__site",)
    fields = ("cycle", *IV_FIELDS)
    readonly_fields = fields


@admin.register(OralDosingPeriod)
class OralDosingPeriodAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "drug", "dose_level", "start_date", "stop_date")
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "dose_level")
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    fields = ("subject", "drug", *PERIOD_FIELDS)
    readonly_fields = fields
