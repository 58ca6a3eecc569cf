"""What treatment contributes (``core.contributions``): its panel, the exposure CRFs exported
and as the EX dataset, their edit checks, the demo's cycles and doses, and who may see them
(entered on the site forms through ``services``; the admin shows them read-only)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import crf_role_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS
from .sdtm import DATASETS
from .views import subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/treatment/", urls),
    subject_panel=subject_panel,
    export_forms=tuple(FORMS),
    datasets=tuple(DATASETS),
    edit_checks=CHECKS,
    seed=demo.seed,
    seed_follow_up=demo.seed_follow_up,
    role_permissions=crf_role_permissions("treatment", "cycle", "ivdose", "oraldosingperiod"),
)
