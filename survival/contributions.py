"""What survival contributes (``core.contributions``): its panel, the end of treatment and
follow-up facts for the visit calendar, its CRFs exported and the ADTTE dataset, their edit
checks, the demo's follow-up, and who may see them (entered on the site forms through
``services``; the admin shows them read-only)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import crf_role_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS
from .sdtm import DATASETS
from .selectors import calendar_facts
from .views import subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("", urls),
    subject_panel=subject_panel,
    calendar_facts=calendar_facts,
    export_forms=tuple(FORMS),
    datasets=tuple(DATASETS),
    edit_checks=CHECKS,
    seed_follow_up=demo.seed_follow_up,
    role_permissions=crf_role_permissions(
        "survival", "endoftreatment", "survivalfollowup", "subsequenttherapy", "endofstudy"
    ),
)
