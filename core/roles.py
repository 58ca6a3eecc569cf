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
