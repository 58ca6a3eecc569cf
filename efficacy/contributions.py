"""What efficacy contributes (``core.contributions``): its panel, the tumor assessments'
facts for the visit calendar, the RECIST CRFs exported and as the TU, TR and RS datasets, their
edit checks, the demo's assessments, and who may see them (entered on the site forms through
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
    site_urls=SiteUrls("subjects/<str:identifier>/efficacy/", urls),
    subject_panel=subject_panel,
    calendar_facts=calendar_facts,
    export_forms=tuple(FORMS),
    datasets=tuple(DATASETS),
    edit_checks=CHECKS,
    seed=demo.seed,
    role_permissions=crf_role_permissions(
        "efficacy",
        "targetlesion",
        "nontargetlesion",
        "tumorassessment",
        "targetmeasurement",
        "nontargetassessment",
    ),
)
