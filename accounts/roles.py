"""The six roles of the study, as Django groups, and the permissions each one holds.

Groups are created by a data migration; ``sync_role_permissions`` (run after every ``migrate``)
gives each group exactly the permissions listed here, so an app that adds models adds its
permissions to this table and nowhere else.
"""

from django.db import models


class Role(models.TextChoices):
    SITE_STAFF = "site_staff", "Site staff"
    INVESTIGATOR = "investigator", "Investigator"
    DATA_MANAGER = "data_manager", "Data manager"
    MONITOR = "monitor", "Monitor"
    SPONSOR = "sponsor", "Sponsor"
    STATISTICIAN = "statistician", "Statistician"


# Roles held at a site (a SiteMembership) and roles that see the whole study.
SITE_ROLES = {Role.SITE_STAFF, Role.INVESTIGATOR, Role.MONITOR}
STUDY_WIDE_ROLES = {Role.DATA_MANAGER, Role.SPONSOR, Role.STATISTICIAN}
# Roles that enter clinical data at their sites.
DATA_ENTRY_ROLES = {Role.SITE_STAFF, Role.INVESTIGATOR}


def _view(*models_):
    return [f"{app}.view_{model}" for app, model in (m.split(".") for m in models_)]


ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.SITE_STAFF: [
        *_view("subjects.site", "subjects.subject", "subjects.historicalsubject"),
        "subjects.add_subject",
        "subjects.change_subject",
    ],
    Role.INVESTIGATOR: [
        *_view("subjects.site", "subjects.subject", "subjects.historicalsubject"),
        "subjects.add_subject",
        "subjects.change_subject",
    ],
    Role.MONITOR: _view(
        "subjects.site",
        "subjects.sitemembership",
        "subjects.subject",
        "subjects.historicalsubject",
    ),
    Role.DATA_MANAGER: [
        *_view(
            "subjects.site",
            "subjects.historicalsite",
            "subjects.sitemembership",
            "subjects.historicalsitemembership",
            "subjects.subject",
            "subjects.historicalsubject",
            "accounts.authevent",
            "auth.user",
        ),
        "subjects.add_site",
        "subjects.change_site",
        "subjects.add_sitemembership",
        "subjects.change_sitemembership",
    ],
    Role.SPONSOR: _view("subjects.site", "subjects.subject"),
    Role.STATISTICIAN: _view("subjects.site", "subjects.subject"),
}


def sync_role_permissions(**kwargs) -> None:
    """post_migrate receiver: each role group holds exactly the permissions declared above."""
    from django.contrib.auth.models import Group, Permission

    for role, perm_names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in perm_names:
            app_label, codename = name.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:  # an app migrated later gets its permissions on its migrate
                wanted.append(perm)
        group.permissions.set(wanted)
