"""What adverse events contributes (``core.contributions``): its panel, the AE CRF exported, its
edit checks, the demo's events, and who may see and enter them. The CRF is entered on the site
forms through ``services``; the admin shows AEs and the CTCAE dictionary read-only (the
dictionary is loaded by load_ctcae)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import crf_role_permissions, entry_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS
from .views import subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    edit_checks=CHECKS,
    seed=demo.seed,
    seed_follow_up=demo.seed_follow_up,
    role_permissions=crf_role_permissions(
        "adverse_events",
        "ctcaeterm",
        "adverseevent",
        "aecausality",
        site_entry=entry_permissions("adverse_events.adverseevent", "adverse_events.aecausality"),
    ),
)
