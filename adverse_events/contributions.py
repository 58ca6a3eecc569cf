"""What adverse events contributes (``core.contributions``): its panel, the AE CRF exported, its
edit checks, the demo's events, and who may see and enter them. The CRF is entered on the site
forms through ``services``; the admin shows AEs and the CTCAE dictionary read-only (the
dictionary is loaded by load_ctcae)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, view_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS
from .views import subject_panel

_READ = view_permissions(
    "adverse_events.ctcaeterm", "adverse_events.adverseevent", "adverse_events.aecausality"
)
_ALL = (
    *_READ,
    *view_permissions(
        "adverse_events.historicaladverseevent",
        "adverse_events.historicalaecausality",
        "adverse_events.historicalctcaeterm",
    ),
)
_ENTRY = (
    *_ALL,
    "adverse_events.add_adverseevent",
    "adverse_events.change_adverseevent",
    "adverse_events.add_aecausality",
    "adverse_events.change_aecausality",
)

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    edit_checks=CHECKS,
    seed=demo.seed,
    seed_follow_up=demo.seed_follow_up,
    role_permissions={
        Role.SITE_STAFF: _ENTRY,
        Role.INVESTIGATOR: _ENTRY,
        Role.DATA_MANAGER: _ALL,
        Role.MONITOR: _ALL,
        Role.SPONSOR: _READ,
        Role.STATISTICIAN: _READ,
    },
)
