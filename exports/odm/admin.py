"""AdminData: the users in the file, the sites (Locations), the signature definitions."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone
from lxml import etree

from core.datasets import study_id
from core.roles import Role

from .oids import LEGAL_REASON, SYSTEM_USER_OID, location_oid, signature_oid, user_oid
from .scope import SIGNED
from .values import _text

# --- admin data ----------------------------------------------------------------------------------


def _role_labels(user) -> list[str]:
    """The user's roles for people: study-wide roles, and site roles with their sites."""
    memberships = [m for m in user.site_memberships.all() if m.active]
    at_sites = {m.role for m in memberships}
    labels = [
        Role(group.name).label
        for group in user.groups.all()
        if group.name in Role.values and group.name not in at_sites
    ]
    labels += [f"{Role(m.role).label} at site {m.site.code}" for m in memberships]
    return labels


def _user_type(user) -> str:
    roles = {g.name for g in user.groups.all()} | {
        m.role for m in user.site_memberships.all() if m.active
    }
    if Role.INVESTIGATOR in roles:
        return "Investigator"
    if roles & {Role.SPONSOR, Role.STATISTICIAN}:
        return "Sponsor"
    return "Other"


def _user_element(admin, user, locations: dict[int, str]) -> None:
    element = etree.SubElement(admin, "User", OID=user_oid(user.get_username()))
    element.set("UserType", _user_type(user))
    etree.SubElement(element, "LoginName").text = _text(user.get_username())
    etree.SubElement(element, "FullName").text = _text(
        user.get_full_name().strip() or user.get_username()
    )
    etree.SubElement(element, "Organization").text = _text(
        "; ".join(_role_labels(user)) or "No study role"
    )
    for membership in user.site_memberships.all():
        if membership.active and membership.site_id in locations:
            etree.SubElement(element, "LocationRef", LocationOID=locations[membership.site_id])


def load_users(user_ids: set) -> list:
    """The users of ``user_ids`` (None stands for "no user recorded"), with their roles."""
    User = get_user_model()
    return list(
        User.objects.filter(pk__in=[pk for pk in user_ids if pk is not None])
        .prefetch_related("groups", "site_memberships__site")
        .order_by(User.USERNAME_FIELD)
    )


def admin_data(mdv_oid: str, sites, users: list, *, no_user: bool) -> etree._Element:
    admin = etree.Element("AdminData", StudyOID=study_id())
    locations = {site.pk: location_oid(site.code) for site in sites}
    for user in users:
        _user_element(admin, user, locations)
    if no_user:
        element = etree.SubElement(admin, "User", OID=SYSTEM_USER_OID, UserType="Other")
        etree.SubElement(
            element, "FullName"
        ).text = "No user recorded: an operator's command, a data load or the system"
    effective = getattr(settings, "EDC_STUDY_START", timezone.localdate()).isoformat()
    for site in sites:
        location = etree.SubElement(
            admin, "Location", OID=locations[site.pk], Name=_text(site.name), LocationType="Site"
        )
        etree.SubElement(
            location,
            "MetaDataVersionRef",
            StudyOID=study_id(),
            MetaDataVersionOID=mdv_oid,
            EffectiveDate=effective,
        )
    for signed in SIGNED:
        for kind, meaning in signed.meanings:
            element = etree.SubElement(
                admin,
                "SignatureDef",
                OID=signature_oid(signed.form, kind),
                Methodology="Electronic",
            )
            etree.SubElement(element, "Meaning").text = meaning
            etree.SubElement(element, "LegalReason").text = LEGAL_REASON
    return admin
