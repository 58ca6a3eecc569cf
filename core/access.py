"""Who may do what: the one access module. Services, views, templates (``{% load access %}``),
admin pages and API permissions all ask these functions; none answers the question itself.

A model names the way to its site (``site_lookup``) and this module knows nothing else of it;
the membership model is the setting ``EDC_SITE_MEMBERSHIP_MODEL`` (fields ``user``, ``site``,
``role``, ``active``), so the bottom layer never imports the app that holds it. A user's roles
and memberships are read once, in one query, and kept on the user object.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.conf import settings
from django.db.models import BigIntegerField, Model, QuerySet, Value

from . import registry
from .errors import AccessDenied
from .roles import (
    DATA_ENTRY_ROLES,
    PSEUDONYMIZED_ROLES,
    ROLE_AS_NOUN,
    STUDY_TEAM_ROLES,
    STUDY_WIDE_ROLES,
    Role,
)

# Direct identifiers of a subject: never shown to the sponsor's people (the API gives the age
# instead of the date of birth). The screening number leads to the site's screening log, which
# names the patient. The one list: every export (its items, ``core.export_spec``), the audit
# trails, the queries' snapshots, the admin and the pages mask or leave out these fields.
DIRECT_IDENTIFIER_FIELDS = ("initials", "date_of_birth", "screening_number")


def _authenticated(user) -> bool:
    return bool(user is not None and user.is_authenticated)


def membership_model() -> type[Model]:
    return apps.get_model(settings.EDC_SITE_MEMBERSHIP_MODEL)


def _load_access_facts(user) -> None:
    """Read the user's role groups and active memberships at active sites in one query (a
    UNION), and keep them on the user object."""
    from django.contrib.auth.models import Group

    roles = Group.objects.filter(user=user).annotate(
        site=Value(None, output_field=BigIntegerField())
    )
    memberships = membership_model()._default_manager.filter(
        user=user, active=True, site__active=True
    )
    rows = (
        roles.order_by()
        .values_list("name", "site")
        .union(memberships.order_by().values_list("role", "site_id"), all=True)
    )
    facts = list(rows)
    user._edc_roles = {name for name, site_id in facts if site_id is None}
    user._edc_memberships = tuple((site_id, role) for role, site_id in facts if site_id)


def user_roles(user) -> set[str]:
    """The names of the user's role groups (read once per user object)."""
    if not _authenticated(user):
        return set()
    if getattr(user, "_edc_roles", None) is None:
        _load_access_facts(user)
    return user._edc_roles


def has_role(user, *roles: str) -> bool:
    return bool(user_roles(user) & set(roles))


def _memberships(user) -> tuple[tuple[int, str], ...]:
    """(site id, role) of the user's active memberships at active sites (read once per user)."""
    if getattr(user, "_edc_memberships", None) is None:
        _load_access_facts(user)
    return user._edc_memberships


def forget_cached_access(user) -> None:
    """Drop what this user object remembers of its roles and memberships (after a change)."""
    for name in ("_edc_roles", "_edc_memberships"):
        user.__dict__.pop(name, None)


def member_site_ids(user, *roles: str) -> set[int]:
    """Ids of the active sites where the user has an active membership (in one of ``roles``)."""
    if not _authenticated(user):
        return set()
    return {site_id for site_id, role in _memberships(user) if not roles or role in roles}


def sees_all_sites(user) -> bool:
    return _authenticated(user) and (user.is_superuser or bool(user_roles(user) & STUDY_WIDE_ROLES))


# --- records and their site ----------------------------------------------------------------------


def site_lookup_of(model) -> str:
    lookup = getattr(model, "site_lookup", None)
    if lookup is None:
        raise TypeError(f"{model.__name__} has no site_lookup: it cannot be scoped")
    return lookup


def site_id_of(obj: Model) -> int:
    """The id of the site ``obj`` belongs to, following its model's ``site_lookup``."""
    lookup = site_lookup_of(type(obj))
    if lookup == "pk":
        return obj.pk
    *path, last = lookup.split("__")
    for name in path:
        obj = getattr(obj, name)
    return getattr(obj, f"{last}_id")


def _site_code(obj: Model) -> str:
    lookup = site_lookup_of(type(obj))
    site: Any = obj  # the site (the subjects app's model), reached by the lookup's names
    if lookup != "pk":
        for name in lookup.split("__"):
            site = getattr(site, name)
    return site.code


def scope_to_user(queryset: QuerySet, user) -> QuerySet:
    """Narrow ``queryset`` to the records ``user`` may see."""
    if not _authenticated(user):
        return queryset.none()
    if sees_all_sites(user):
        return queryset
    lookup = site_lookup_of(queryset.model)
    return queryset.filter(**{f"{lookup}__in": member_site_ids(user)})


# --- the questions -------------------------------------------------------------------------------


def can_view(user, obj: Model) -> bool:
    return sees_all_sites(user) or site_id_of(obj) in member_site_ids(user)


def lock_state(obj: Model) -> tuple[str, str] | None:
    """("frozen" or "locked", a sentence) when ``obj``'s data (a record, a subject's casebook, or
    the study: a site's registrations) are frozen or locked, asked of the apps above through
    their ``lock_state`` hook (``monitoring``); None when they may change."""
    for hook in registry.lock_states():
        if state := hook(obj):
            return state
    return None


def _locked(obj: Model) -> bool:
    state = lock_state(obj)
    return state is not None and state[0] == "locked"


def _may_enter_data(user, obj: Model) -> bool:
    return site_id_of(obj) in member_site_ids(user, *DATA_ENTRY_ROLES)


def can_enter_data(user, obj: Model) -> bool:
    """Site staff and investigators enter clinical data at their own sites, nobody else; and
    nobody changes frozen or locked data (pages show them read-only)."""
    return _may_enter_data(user, obj) and lock_state(obj) is None


def can_randomize(user, subject: Model) -> bool:
    return can_enter_data(user, subject)


def can_sign_eligibility(user, obj: Model) -> bool:
    return site_id_of(obj) in member_site_ids(user, Role.INVESTIGATOR)


def can_raise_query(user, obj: Model) -> bool:
    """Data managers (study-wide) and the monitors of the record's site raise manual queries,
    and close, reopen and cancel queries."""
    return _may_raise_query(user, obj) and not _locked(obj)


def _may_raise_query(user, obj: Model) -> bool:
    return has_role(user, Role.DATA_MANAGER) or site_id_of(obj) in member_site_ids(
        user, Role.MONITOR
    )


def can_answer_query(user, obj: Model) -> bool:
    """The site answers its data queries: site staff and investigators of the record's site
    (frozen data too: the query workflow goes on; locked data not)."""
    if can_enter_data(user, obj):
        return True
    state = lock_state(obj) if _may_enter_data(user, obj) else None
    return state is not None and state[0] == "frozen"


def can_report_safety(user, obj: Model) -> bool:
    """Site staff and investigators record when a serious AE was reported to the sponsor, on
    frozen data too (the 24-hour duty does not wait for an unfreeze; ``monitoring.guard`` lets
    only that field through); locked data not."""
    if can_enter_data(user, obj):
        return True
    state = lock_state(obj) if _may_enter_data(user, obj) else None
    return state is not None and state[0] == "frozen"


def can_verify_source_data(user, obj: Model) -> bool:
    """The monitors of the record's site verify its data against the source documents."""
    return site_id_of(obj) in member_site_ids(user, Role.MONITOR)


def can_freeze_and_lock(user) -> bool:
    """Data managers freeze, lock, unfreeze and unlock records, casebooks and the study."""
    return _authenticated(user) and has_role(user, Role.DATA_MANAGER)


def can_read_exports(user) -> bool:
    """The study team reads the sponsor API and the reports built for it."""
    return _authenticated(user) and (user.is_superuser or has_role(user, *STUDY_TEAM_ROLES))


def is_statistician(user) -> bool:
    """Slots, block sizes, seeds and lists are for statisticians (and superusers) only."""
    return _authenticated(user) and (user.is_superuser or has_role(user, Role.STATISTICIAN))


def can_see_efficacy_by_arm(user) -> bool:
    """Efficacy by arm (the PFS/OS Kaplan-Meier report): statisticians (and superusers) only;
    the trial is open-label, but results by arm are not for sites, monitors, data managers or
    the sponsor's operations."""
    return is_statistician(user)


def sees_direct_identifiers(user) -> bool:
    """May ``user`` see a subject's direct identifiers (``DIRECT_IDENTIFIER_FIELDS``: initials,
    date of birth, screening number)? Not the sponsor's people (sponsor, statistician): they
    work on pseudonymized data (pages, admin, API)."""
    return _authenticated(user) and (user.is_superuser or not has_role(user, *PSEUDONYMIZED_ROLES))


def data_entry_site_ids(user) -> set[int]:
    return member_site_ids(user, *DATA_ENTRY_ROLES)


def can_register_subjects(user) -> bool:
    return bool(data_entry_site_ids(user))


def may_use_admin(user) -> bool:
    """The admin is the data managers' tool: data managers, statisticians and active
    superusers log into it; site staff, investigators, monitors and the sponsor do not."""
    if not _authenticated(user) or not user.is_active:
        return False
    return user.is_superuser or has_role(user, Role.DATA_MANAGER, Role.STATISTICIAN)


# --- refusals for services -----------------------------------------------------------------------


def _refuse(obj: Model, *roles: str) -> AccessDenied:
    names = " or ".join(ROLE_AS_NOUN[r] for r in Role if r in roles) or "a member"
    return AccessDenied(f"You are not {names} at site {_site_code(obj)}.")


def _refuse_if_locked(obj: Model, *, frozen_too: bool) -> None:
    state = lock_state(obj)
    if state is not None and (frozen_too or state[0] == "locked"):
        raise AccessDenied(state[1])


def require_data_entry(user, obj: Model) -> None:
    if not can_enter_data(user, obj):
        if _may_enter_data(user, obj):
            _refuse_if_locked(obj, frozen_too=True)
        raise _refuse(obj, *DATA_ENTRY_ROLES)


def require_data_entry_role(user, obj: Model) -> None:
    """``require_data_entry`` without the lock state: for a service whose write guard refuses
    frozen or locked data in its own transaction anyway (one query fewer on a hot path)."""
    if not _may_enter_data(user, obj):
        raise _refuse(obj, *DATA_ENTRY_ROLES)


def require_investigator(user, obj: Model) -> None:
    if not can_sign_eligibility(user, obj):
        raise _refuse(obj, Role.INVESTIGATOR)


def require_statistician(user, action: str) -> None:
    """``user`` None is an operator at the server's shell (management commands)."""
    if user is not None and not is_statistician(user):
        raise AccessDenied(f"{user} is not a statistician: only a statistician {action}.")


def require_source_data_verifier(user, obj: Model) -> None:
    if not can_verify_source_data(user, obj):
        raise _refuse(obj, Role.MONITOR)


def require_freeze_and_lock(user) -> None:
    if not can_freeze_and_lock(user):
        raise AccessDenied("Only data managers freeze, lock, unfreeze or unlock data.")


def require_raise_query(user, obj: Model) -> None:
    if not can_raise_query(user, obj):
        if _may_raise_query(user, obj):
            _refuse_if_locked(obj, frozen_too=False)
        raise AccessDenied(
            f"Only data managers and the monitors of site {_site_code(obj)} raise, close, reopen "
            "or cancel queries here."
        )


def require_answer_query(user, obj: Model) -> None:
    if not can_answer_query(user, obj):
        if _may_enter_data(user, obj):
            _refuse_if_locked(obj, frozen_too=False)
        raise _refuse(obj, *DATA_ENTRY_ROLES)


def require_safety_reporting(user, obj: Model) -> None:
    if not can_report_safety(user, obj):
        if _may_enter_data(user, obj):
            _refuse_if_locked(obj, frozen_too=False)
        raise _refuse(obj, *DATA_ENTRY_ROLES)
