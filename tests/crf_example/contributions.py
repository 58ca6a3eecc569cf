"""What the example CRF contributes (``core.contributions``): its pages, its exported form, the
VS dataset, its edit check and who may see it in the admin."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, view_permissions

from . import urls
from .edit_checks import CHECKS
from .export import FORMS
from .sdtm import DATASETS

_READ = view_permissions("crf_example.vitalsigns")
_ALL = (*_READ, *view_permissions("crf_example.historicalvitalsigns"))

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("subjects/<str:identifier>/vital-signs/", urls),
    export_forms=tuple(FORMS),
    datasets=tuple(DATASETS),
    edit_checks=CHECKS,
    role_permissions={
        Role.SITE_STAFF: _ALL,
        Role.INVESTIGATOR: _ALL,
        Role.DATA_MANAGER: _ALL,
        Role.MONITOR: _ALL,
        Role.SPONSOR: _READ,
        Role.STATISTICIAN: _READ,
    },
)
