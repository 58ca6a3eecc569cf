"""What efficacy contributes (``core.contributions``): its panel, the tumor assessments'
facts for the visit calendar, the RECIST CRFs exported and as the TU, TR and RS datasets, their
edit checks, the demo's assessments, and who may see them (entered on the site forms through
``services``; the admin shows them read-only)."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, view_permissions

from . import demo, urls
from .edit_checks import CHECKS
from .export import FORMS
from .sdtm import DATASETS
from .selectors import calendar_facts
from .views import subject_panel

_MODELS = (
    "targetlesion",
    "nontargetlesion",
    "tumorassessment",
    "targetmeasurement",
    "nontargetassessment",
)
_READ = view_permissions(*(f"efficacy.{m}" for m in _MODELS))
_ALL = (*_READ, *view_permissions(*(f"efficacy.historical{m}" for m in _MODELS)))

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/efficacy/", urls),
    subject_panel=subject_panel,
    calendar_facts=calendar_facts,
    export_forms=tuple(FORMS),
    datasets=tuple(DATASETS),
    edit_checks=CHECKS,
    seed=demo.seed,
    role_permissions={
        Role.SITE_STAFF: _ALL,
        Role.INVESTIGATOR: _ALL,
        Role.DATA_MANAGER: _ALL,
        Role.MONITOR: _ALL,
        Role.SPONSOR: _READ,
        Role.STATISTICIAN: _READ,
    },
)
