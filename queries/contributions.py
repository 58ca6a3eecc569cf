"""What queries contributes (``core.contributions``): its panel, the markers of open queries on
the CRF pages and the answers given beside their fields, the edit checks run after a subject's
data change, the queries exported, the demo's first sweep, and who may read them. Every
transition goes through ``services`` (who may make it is asked of ``core.access``): no role adds,
changes or deletes a query or a message in the admin."""

from core.contributions import AppContributions, SiteUrls
from core.roles import Role, crf_role_permissions

from . import demo, urls
from .export import FORMS
from .scheduling import subject_changed
from .views import posted_answer, record_field_flags, subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("queries/", urls),
    subject_panel=subject_panel,
    record_field_flags=record_field_flags,
    record_form_action=posted_answer,
    after_subject_change=subject_changed,
    export_forms=tuple(FORMS),
    seed_follow_up=demo.seed_follow_up,
    role_permissions=crf_role_permissions(
        "queries", "dataquery", "querymessage", record_readers=(Role.SPONSOR,)
    ),
)
