"""Admin for data managers: review AEs with filters (site, SOC, grade, serious, SAE clock) and
their history. Read-only: AEs are entered and changed by the sites on the AE forms (through the
services), and the dictionary is loaded by ``manage.py load_ctcae``."""

from django.contrib import admin

from core.admin import ReadOnlyAuditedAdmin, ReadOnlyInline, ScopedAdminMixin

from .models import SERIOUS_CRITERIA_FIELDS, AdverseEvent, AeCausality, CtcaeTerm
from .sae_clock import SaeClock


@admin.register(CtcaeTerm)
class CtcaeTermAdmin(ReadOnlyAuditedAdmin):
    list_display = ("term", "meddra_code", "soc", "grades", "is_other_specify")
    list_filter = ("soc", "is_other_specify")
    search_fields = ("term", "meddra_code")
    fieldsets = [
        (None, {"fields": ("meddra_code", "soc", "term", "grades", "is_other_specify")}),
        ("Grades", {"fields": ("grade1", "grade2", "grade3", "grade4", "grade5", "definition")}),
    ]

    def get_queryset(self, request):
        # Reference data, the same for every site: not narrowed by site.
        return super(ScopedAdminMixin, self).get_queryset(request)


class SaeClockFilter(admin.SimpleListFilter):
    """The states of ``sae_clock`` (the same rule as the pages), and "not yet reported"."""

    title = "SAE report"
    parameter_name = "sae_clock"
    UNREPORTED = "unreported"

    def lookups(self, request, model_admin):
        return [*SaeClock.choices, (self.UNREPORTED, "Not yet reported (any)")]

    def queryset(self, request, queryset):
        if self.value() == self.UNREPORTED:
            return queryset.sae_unreported()
        if self.value() in SaeClock.values:
            return queryset.in_sae_clock(SaeClock(self.value()))
        return queryset


class CausalityInline(ReadOnlyInline):
    model = AeCausality
    fields = ("drug", "causality", "related", "action_taken")


@admin.register(AdverseEvent)
class AdverseEventAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "subject",
        "ae_number",
        "term",
        "grade",
        "onset_date",
        "serious",
        "sae_clock_display",
        "outcome",
        "immune_related",
    )
    list_filter = (
        ("subject__site", admin.RelatedOnlyFieldListFilter),
        "term__soc",
        "grade",
        "serious",
        SaeClockFilter,
        "outcome",
        "immune_related",
    )
    search_fields = ("subject__subject_identifier", "term__term", "verbatim_term")
    list_select_related = ("subject__site", "term")
    inlines = [CausalityInline]
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "subject",
                    "ae_number",
                    "term",
                    "verbatim_term",
                    "grade",
                    ("onset_date", "end_date", "ongoing"),
                )
            },
        ),
        (
            "Seriousness and SAE clock",
            {
                "fields": (
                    "serious",
                    *SERIOUS_CRITERIA_FIELDS,
                    "site_aware_at",
                    "sae_reported_at",
                )
            },
        ),
        (
            "Outcome",
            {
                "fields": (
                    "outcome",
                    "death_date",
                    "immune_related",
                    "treatment_given",
                    "treatment_details",
                )
            },
        ),
    ]
    readonly_fields = ("ae_number", "sae_reported_at")

    @admin.display(description="SAE report")
    def sae_clock_display(self, obj):
        clock = obj.sae_clock()
        return clock.label if clock else "—"


@admin.register(AeCausality)
class AeCausalityAdmin(ReadOnlyAuditedAdmin):
    list_display = ("adverse_event", "drug", "causality", "related", "action_taken")
    list_filter = ("drug", "causality", "related", "action_taken")
    search_fields = ("adverse_event__subject__subject_identifier",)
    list_select_related = ("adverse_event__subject__site", "adverse_event__term")
    fields = ("adverse_event", "drug", "causality", "related", "action_taken")
    readonly_fields = ("related",)  # derived from causality: no form field (the history pages)
