"""What randomization contributes (``core.contributions``): its panel, the allocations exported,
the balance report in the API, the edit checks against the randomization, the demo's
allocations, and who may see them (the list, strata and slots: the statistician only)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, view_permissions

from . import demo, urls
from .api import ROUTES
from .edit_checks import CHECKS
from .export import FORMS
from .views import subject_panel

_ALLOCATION = view_permissions("randomization.allocation")

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/randomize/", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    edit_checks=CHECKS,
    api_routes=ROUTES,
    seed=demo.seed,
    role_permissions={
        Role.SITE_STAFF: _ALLOCATION,
        Role.INVESTIGATOR: _ALLOCATION,
        Role.MONITOR: _ALLOCATION,
        Role.DATA_MANAGER: view_permissions(
            "randomization.allocation", "randomization.historicalallocation"
        ),
        Role.STATISTICIAN: view_permissions(
            "randomization.randomizationlist",
            "randomization.historicalrandomizationlist",
            "randomization.stratum",
            "randomization.slot",
            "randomization.allocation",
            "randomization.historicalallocation",
        ),
    },
)
