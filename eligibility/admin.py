"""Admin of the eligibility CRF: scoped by site, a reason for every change, history read-only.

Data managers, monitors, sponsors and statisticians hold only view permissions here, so the pages
are read-only for them. Site staff and investigators may correct the CRF here too; the change goes
through ``services.save_assessment`` (same rules as the web form: consent, site, reason, the
signature voided). Signatures are read-only for everyone: only the sign-off pages make them.
"""

from django.contrib import admin

from core.admin import AuditedAdmin, ReadOnlyAuditedAdmin

from . import selectors, services
from .forms import SECTIONS
from .models import EligibilityAssessment, EligibilitySignature
from .signed_data import CRF_FIELDS


@admin.register(EligibilityAssessment)
class EligibilityAssessmentAdmin(AuditedAdmin):
    change_question = "can_enter_data"
    list_display = ("subject", "site_code", "result", "signed", "planned_randomization_date")
    list_filter = ("subject__site", "subject__status", "bclc_stage", "ecog")
    search_fields = ("subject__subject_identifier", "subject__screening_number")
    list_select_related = ("subject__site",)
    readonly_fields = ("created", "updated", "evaluation_summary")

    def get_fieldsets(self, request, obj=None):
        head = ["subject", "evaluation_summary"] if obj else ["subject"]
        fieldsets = [(None, {"fields": head})]
        fieldsets += [(title, {"fields": names}) for title, _, names in SECTIONS]
        if obj is not None:
            fieldsets.append(("Reason for change", {"fields": ["change_reason"]}))
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "subject") if obj else self.readonly_fields

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

    def save_through_service(self, request, obj, form, change, reason):
        data = {f: form.cleaned_data[f] for f in CRF_FIELDS if f in form.cleaned_data}
        saved = services.save_assessment(obj.subject, user=request.user, data=data, reason=reason)
        obj.pk = saved.pk
        obj._state.adding = False


@admin.register(EligibilitySignature)
class EligibilitySignatureAdmin(ReadOnlyAuditedAdmin):
    """Signatures are made only on the sign-off page."""

    list_display = ("assessment", "kind", "signer_name", "signed_at", "void")
    list_filter = ("kind", "void", "assessment__subject__site")
    search_fields = ("assessment__subject__subject_identifier", "signer_name")
    list_select_related = ("assessment__subject",)
