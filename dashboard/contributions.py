"""What the dashboard contributes (``core.contributions``): its page."""

from core.contributions import AppContributions, SiteUrls

from . import urls

CONTRIBUTIONS = AppContributions(site_urls=SiteUrls("dashboard/", urls))
