"""Access rules: roles and site scoping, in one place.

Roles are Django groups (see ``accounts.roles``). Site staff, investigators and monitors see only
the subjects of the sites they are members of; data managers, sponsors and statisticians see all
sites. Every view, admin page and API endpoint narrows its queryset with ``scope_to_user``.
A model says how to reach its site with the class attribute ``site_lookup`` (``"site"`` for a
subject, ``"subject__site"`` for a CRF); ``Site`` itself uses ``"pk"``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from accounts.roles import STUDY_WIDE_ROLES, Role

from .errors import AccessDenied


def user_roles(user) -> set[str]:
    if not user or not user.is_authenticated:
        return set()
    cached = getattr(user, "_edc_roles", None)
    if cached is None:
        cached = set(user.groups.values_list("name", flat=True))
        user._edc_roles = cached
    return cached


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def sees_all_sites(user) -> bool:
    return bool(user and user.is_authenticated) and (
        user.is_superuser or bool(user_roles(user) & STUDY_WIDE_ROLES)
    )


# Direct identifiers of a subject: never shown to the sponsor (the API gives the age instead).
DIRECT_IDENTIFIER_FIELDS = ("initials", "date_of_birth")


def sees_direct_identifiers(user) -> bool:
    """May ``user`` see a subject's initials and date of birth? Not the sponsor's people
    (sponsor, statistician): they work on pseudonymized data (pages, admin, API)."""
    if not user or not user.is_authenticated:
        return False
    return user.is_superuser or not has_role(user, Role.SPONSOR, Role.STATISTICIAN)


def member_site_ids(user, *roles: str) -> set[int]:
    """Ids of the active sites where the user has an active membership (in one of ``roles``)."""
    from subjects.models import SiteMembership

    if not user or not user.is_authenticated:
        return set()
    memberships = SiteMembership.objects.filter(user=user, active=True, site__active=True)
    if roles:
        memberships = memberships.filter(role__in=roles)
    return set(memberships.values_list("site_id", flat=True))


def scope_to_user(queryset: QuerySet, user) -> QuerySet:
    """Narrow ``queryset`` to the records ``user`` may see."""
    if not user or not user.is_authenticated:
        return queryset.none()
    if sees_all_sites(user):
        return queryset
    from subjects.models import SiteMembership

    lookup = getattr(queryset.model, "site_lookup", None)
    if lookup is None:
        raise TypeError(f"{queryset.model.__name__} has no site_lookup: it cannot be scoped")
    site_ids = SiteMembership.objects.filter(user=user, active=True, site__active=True).values(
        "site_id"
    )
    field = "pk" if lookup == "pk" else lookup
    return queryset.filter(**{f"{field}__in": site_ids})


def require_site_role(user, site, *roles: str) -> None:
    """Refuse unless ``user`` holds one of ``roles`` at ``site`` (an active membership)."""
    if site.pk not in member_site_ids(user, *roles):
        names = " or ".join(ROLE_AS_NOUN[r] for r in Role if r in roles) or "a member"
        raise AccessDenied(f"You are not {names} at site {site.code}.")


ROLE_AS_NOUN = {
    Role.SITE_STAFF: "site staff",
    Role.INVESTIGATOR: "an investigator",
    Role.MONITOR: "a monitor",
    Role.DATA_MANAGER: "a data manager",
    Role.SPONSOR: "the sponsor",
    Role.STATISTICIAN: "a statistician",
}
