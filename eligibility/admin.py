"""Admin of the eligibility CRF: scoped by site, read-only, history read-only.

The admin is the data managers' tool (``access.may_use_admin``): data managers and statisticians
read the CRF here; site staff and investigators, who enter it, do so on the site's CRF page
(``services.save_assessment``: consent, site, reason, the signature voided). Signatures are
read-only for everyone: only the sign-off pages make them.

Each lab shows its value as reported and its unit (entered) beside the SI value (computed, read
only). The prior therapy rows are shown read-only under their question and listed on their own
page; they are entered on the site's CRF page (``services.save_prior_therapies``).
"""

from django.contrib import admin
from django.utils.html import format_html_join

from core.admin import ReadOnlyAuditedAdmin

from . import selectors, services, units
from .forms import PRIOR_THERAPY_QUESTION, SECTIONS, lab_fields
from .models import EligibilityAssessment, EligibilitySignature, PriorTherapy
from .signed_data import COMPUTED_FIELDS


def _admin_fields(names: list[str]) -> list:
    """A section's fields for the admin: a lab on one line (value, unit, SI value), the prior
    therapy rows after their question."""
    fields = []
    for name in names:
        fields.append(lab_fields(name) if name in units.LABS else name)
        if name == PRIOR_THERAPY_QUESTION:
            fields.append("prior_therapy_rows")
    return fields


@admin.register(EligibilityAssessment)
class EligibilityAssessmentAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "site_code", "result", "signed", "planned_randomization_date")
    list_filter = ("subject__site", "subject__status", "bclc_stage", "ecog")
    search_fields = ("subject__subject_identifier", "subject__screening_number")
    list_select_related = ("subject__site",)
    readonly_fields = (
        "created",
        "updated",
        "evaluation_summary",
        "prior_therapy_rows",
        *COMPUTED_FIELDS,
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("prior_therapies", "signatures")

    def get_fieldsets(self, request, obj=None):
        head = ["subject", "evaluation_summary"] if obj else ["subject"]
        fieldsets = [(None, {"fields": head})]
        fieldsets += [(title, {"fields": _admin_fields(names)}) for title, _, names in SECTIONS]
        return fieldsets

    @admin.display(description="Site")
    def site_code(self, obj):
        return obj.subject.site.code

    @admin.display(description="Result")
    def result(self, obj):
        return services.evaluate_eligibility(obj).status.label

    @admin.display(description="Signed", boolean=True)
    def signed(self, obj):
        return selectors.valid_signature(obj) is not None

    @admin.display(description="Evaluation")
    def evaluation_summary(self, obj):
        return services.evaluate_eligibility(obj).summary()

    @admin.display(description="Prior systemic therapies")
    def prior_therapy_rows(self, obj):
        rows = obj.prior_therapy_list() if obj is not None and obj.pk else []
        if not rows:
            return "None listed"
        return format_html_join("", "<div>{}</div>", ((row.describe(),) for row in rows))


@admin.register(PriorTherapy)
class PriorTherapyAdmin(ReadOnlyAuditedAdmin):
    """Entered on the CRF page only (the service voids the signature when the rows change)."""

    list_display = ("assessment", "agent", "agent_other", "setting", "start_date", "end_date")
    list_filter = ("agent", "setting", "assessment__subject__site")
    search_fields = ("assessment__subject__subject_identifier", "agent_other")
    list_select_related = ("assessment__subject",)


@admin.register(EligibilitySignature)
class EligibilitySignatureAdmin(ReadOnlyAuditedAdmin):
    """Signatures are made only on the sign-off page."""

    list_display = ("assessment", "kind", "signer_name", "signed_at", "void")
    list_filter = ("kind", "void", "assessment__subject__site")
    search_fields = ("assessment__subject__subject_identifier", "signer_name")
    list_select_related = ("assessment__subject",)
