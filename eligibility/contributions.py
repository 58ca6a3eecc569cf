"""What eligibility contributes (``core.contributions``): its panel, the CRF and its signatures
exported, its edit check, the voiding of a signature when the subject's data change, the demo's
assessments, and who may see and enter them. Signatures are made only by ``services`` (password
re-entry), so no role adds or changes them directly."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, view_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS, SIGNED
from .services import void_signatures_if_subject_data_changed
from .views import subject_panel

_ALL = view_permissions(
    "eligibility.eligibilityassessment",
    "eligibility.historicaleligibilityassessment",
    "eligibility.eligibilitysignature",
    "eligibility.historicaleligibilitysignature",
    "eligibility.priortherapy",
    "eligibility.historicalpriortherapy",
)
_ENTRY = (
    *_ALL,
    "eligibility.add_eligibilityassessment",
    "eligibility.change_eligibilityassessment",
)
_READ = view_permissions(
    "eligibility.eligibilityassessment",
    "eligibility.eligibilitysignature",
    "eligibility.priortherapy",
)

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/eligibility/", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    signed_forms=tuple(SIGNED),
    edit_checks=CHECKS,
    on_subject_data_change=void_signatures_if_subject_data_changed,
    seed=demo.seed,
    role_permissions={
        Role.SITE_STAFF: _ENTRY,
        Role.INVESTIGATOR: _ENTRY,
        Role.DATA_MANAGER: _ALL,
        Role.MONITOR: _ALL,
        Role.SPONSOR: _READ,
        Role.STATISTICIAN: _READ,
    },
)
