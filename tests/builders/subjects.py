"""Test data builders. They create records through the services, as users would.

Clinical dates are the site's dates: ``site_today(site)`` is today at ``site`` (by default at a
site of the default zone, ``EDC_DEFAULT_SITE_TIME_ZONE``, as the test sites are), and
``days_ago(n)`` counts back from it. Never date a CRF with ``timezone.localdate()`` (UTC's date):
a randomization is dated at the site, and for part of every day the site's date is a day ahead
of (or behind) UTC's.
"""

from __future__ import annotations

import itertools
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from core.audit import audited_save
from core.roles import SITE_ROLES, Role
from core.site_time import default_time_zone, zone_of
from subjects import services
from subjects.models import Site, SiteMembership, Subject

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def make_site(code: str | None = None, *, by=None, **fields) -> Site:
    code = code or f"S{next(_counter):03d}"
    site = Site(code=code, name=fields.pop("name", f"Hospital {code}"), country="China", **fields)
    return audited_save(site, user=by, reason="")


def make_user(role: str | None = None, *sites: Site, username: str | None = None, **fields):
    """A user with ``role``; site roles get a membership at each of ``sites``."""
    User = get_user_model()
    username = username or f"{role or 'user'}{next(_counter)}"
    user = User.objects.create_user(username, f"{username}@example.org", PASSWORD, **fields)
    if role in SITE_ROLES:
        for site in sites:
            services.save_membership(SiteMembership(user=user, site=site, role=role), user=None)
    elif role:
        user.groups.add(Group.objects.get(name=role))
    return get_user_model().objects.get(pk=user.pk)  # fresh: no cached roles


def make_subject(
    site: Site,
    *,
    by=None,
    consented: bool = True,
    date_of_birth: date | None = date(1965, 5, 17),
    consent_date: date | None = None,
    **fields,
) -> Subject:
    """A screened subject at ``site``; consented (today at the site, unless ``consent_date``) by
    default."""
    by = by or make_user(Role.SITE_STAFF, site)
    subject = services.register_subject(
        site=site,
        user=by,
        screening_number=fields.pop("screening_number", f"SCR-{next(_counter):05d}"),
        sex=fields.pop("sex", "M"),
        date_of_birth=date_of_birth,
        screening_date=fields.pop("screening_date", None),
        **fields,
    )
    if consented:
        services.record_consent(
            subject,
            user=by,
            consent_date=consent_date or site_today(site),
            consent_version="2.0",
        )
    return subject


def site_today(site=None) -> date:
    """Today's date at ``site`` (a site, a record of a site, or a zone name); without one, at a
    site of the default zone. Reads ``timezone.now()``, so a test's moved clock moves it."""
    zone = zone_of(site) if site is not None else zone_of(default_time_zone())
    return timezone.localdate(timezone.now(), zone)


def days_ago(n: int, site=None) -> date:
    """The date ``n`` days before today at ``site`` (default: a site of the default zone)."""
    return site_today(site) - timedelta(days=n)
