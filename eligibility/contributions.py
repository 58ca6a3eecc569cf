"""What eligibility contributes (``core.contributions``): its panel, the CRF and its signatures
exported, its edit check, the voiding of a signature when the subject's data change, the demo's
assessments, and who may see and enter them. Signatures are made only by ``services`` (password
re-entry), so no role adds or changes them directly."""

from core.contributions import AppContributions, SiteUrls
from core.roles import crf_role_permissions, entry_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS, SIGNED
from .services import void_signatures_if_subject_data_changed
from .views import subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/eligibility/", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    signed_forms=tuple(SIGNED),
    edit_checks=CHECKS,
    on_subject_data_change=void_signatures_if_subject_data_changed,
    seed=demo.seed,
    role_permissions=crf_role_permissions(
        "eligibility",
        "eligibilityassessment",
        "eligibilitysignature",
        "priortherapy",
        site_entry=entry_permissions("eligibility.eligibilityassessment"),
    ),
)
