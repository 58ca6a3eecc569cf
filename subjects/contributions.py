"""What subjects contributes (``core.contributions``): the sites and subjects exported, the edit
checks of the subject record, the demo's sites, users and subjects, and who may see and change
them (sites and memberships are the data manager's)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, entry_permissions, view_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS

_SITE_ENTRY = (
    *view_permissions("subjects.site", "subjects.subject", "subjects.historicalsubject"),
    *entry_permissions("subjects.subject"),
)

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/", urls),
    export_forms=tuple(FORMS),
    edit_checks=CHECKS,
    seed=demo.seed,
    seed_follow_up=demo.seed_follow_up,
    role_permissions={
        Role.SITE_STAFF: _SITE_ENTRY,
        Role.INVESTIGATOR: _SITE_ENTRY,
        Role.MONITOR: view_permissions(
            "subjects.site",
            "subjects.sitemembership",
            "subjects.subject",
            "subjects.historicalsubject",
        ),
        Role.DATA_MANAGER: (
            *view_permissions(
                "subjects.site",
                "subjects.historicalsite",
                "subjects.sitemembership",
                "subjects.historicalsitemembership",
                "subjects.subject",
                "subjects.historicalsubject",
            ),
            *entry_permissions("subjects.site", "subjects.sitemembership"),
        ),
        Role.SPONSOR: view_permissions("subjects.site", "subjects.subject"),
        Role.STATISTICIAN: view_permissions("subjects.site", "subjects.subject"),
    },
)
