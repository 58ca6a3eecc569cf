"""The six roles of the study: the vocabulary every layer speaks.

Roles are Django groups named by these values (created by ``accounts``' data migration; their
permissions are each app's ``role_permissions``, synced by ``accounts.roles``). Who may do what
with them is answered in ``core.access`` only.
"""

from django.db import models


class Role(models.TextChoices):
    SITE_STAFF = "site_staff", "Site staff"
    INVESTIGATOR = "investigator", "Investigator"
    DATA_MANAGER = "data_manager", "Data manager"
    MONITOR = "monitor", "Monitor"
    SPONSOR = "sponsor", "Sponsor"
    STATISTICIAN = "statistician", "Statistician"


# Roles held at a site (a site membership) and roles that see the whole study.
SITE_ROLES = frozenset({Role.SITE_STAFF, Role.INVESTIGATOR, Role.MONITOR})
STUDY_WIDE_ROLES = frozenset({Role.DATA_MANAGER, Role.SPONSOR, Role.STATISTICIAN})
# Roles that enter clinical data at their sites.
DATA_ENTRY_ROLES = frozenset({Role.SITE_STAFF, Role.INVESTIGATOR})
# The study team: reads the sponsor exports and the reports (balance report), each within scope.
STUDY_TEAM_ROLES = frozenset({Role.SPONSOR, Role.STATISTICIAN, Role.DATA_MANAGER, Role.MONITOR})
# The sponsor's people work on pseudonymized data: no initials, date of birth or screening number.
PSEUDONYMIZED_ROLES = frozenset({Role.SPONSOR, Role.STATISTICIAN})

ROLE_AS_NOUN = {
    Role.SITE_STAFF: "site staff",
    Role.INVESTIGATOR: "an investigator",
    Role.MONITOR: "a monitor",
    Role.DATA_MANAGER: "a data manager",
    Role.SPONSOR: "the sponsor",
    Role.STATISTICIAN: "a statistician",
}


def view_permissions(*models: str) -> tuple[str, ...]:
    """The view permissions of ``models`` ("app.model"), for an app's ``role_permissions``."""
    return tuple(f"{app}.view_{model}" for app, model in (m.split(".") for m in models))


def entry_permissions(*models: str) -> tuple[str, ...]:
    """The add and change permissions of ``models`` ("app.model"): who enters them (never delete:
    audited records are not deleted that way)."""
    return tuple(
        f"{app}.{action}_{model}"
        for app, model in (m.split(".") for m in models)
        for action in ("add", "change")
    )


def crf_role_permissions(
    app_label: str,
    *models: str,
    site_entry: tuple[str, ...] = (),
    record_readers: tuple[str, ...] = (Role.SPONSOR, Role.STATISTICIAN),
) -> dict[str, tuple[str, ...]]:
    """The usual readers of a CRF app's ``models``: the site's staff, its investigator, data
    managers and monitors see the records and their history; ``record_readers`` (the sponsor's
    pseudonymized people) the records only, not who changed what. ``site_entry``: the add and
    change permissions the site's staff and investigators hold besides."""
    records = view_permissions(*(f"{app_label}.{model}" for model in models))
    history = view_permissions(*(f"{app_label}.historical{model}" for model in models))
    with_history = (*records, *history)
    entry = (*with_history, *site_entry)
    return {
        Role.SITE_STAFF: entry,
        Role.INVESTIGATOR: entry,
        Role.DATA_MANAGER: with_history,
        Role.MONITOR: with_history,
        **{role: records for role in record_readers},
    }
