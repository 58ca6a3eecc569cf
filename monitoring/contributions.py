"""What monitoring contributes (``core.contributions``): every audited write asks its guard
first (locked and frozen data refuse it; a change to verified or signed data clears the
verification and voids the signature); ``core.access`` asks its lock state (pages then show a
record read-only) and the edit-check sweep skips its locked data; its panel and the badges of a
CRF record; the verifications, states and sign-offs exported; the SDV progress in the API; the
demo's monitoring."""

from core.contributions import AppContributions, SiteUrls

from . import demo, urls
from .api import ROUTES
from .export import FORMS, SIGNED
from .guard import guard_write
from .state import lock_state_of, locked_data
from .views import record_field_flags, subject_panel

CONTRIBUTIONS = AppContributions(
    site_urls=SiteUrls("monitoring/", urls),
    guard_write=guard_write,
    lock_state=lock_state_of,
    locked_data=locked_data,
    subject_panel=subject_panel,
    record_field_flags=record_field_flags,
    export_forms=tuple(FORMS),
    signed_forms=tuple(SIGNED),
    api_routes=ROUTES,
    seed_follow_up=demo.seed_follow_up,
)
