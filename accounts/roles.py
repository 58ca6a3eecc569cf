"""The permissions each of the six roles (``core.roles``) holds, as Django groups.

Groups are created by a data migration; ``sync_role_permissions`` (run after every ``migrate``)
gives each group exactly the permissions listed here, so an app that adds models adds its
permissions to this table and nowhere else.
"""

from core.roles import Role


def _view(*models_):
    return [f"{app}.view_{model}" for app, model in (m.split(".") for m in models_)]


ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.SITE_STAFF: [
        *_view("subjects.site", "subjects.subject", "subjects.historicalsubject"),
        *_view("randomization.allocation"),
        "subjects.add_subject",
        "subjects.change_subject",
    ],
    Role.INVESTIGATOR: [
        *_view("subjects.site", "subjects.subject", "subjects.historicalsubject"),
        *_view("randomization.allocation"),
        "subjects.add_subject",
        "subjects.change_subject",
    ],
    Role.MONITOR: _view(
        "subjects.site",
        "subjects.sitemembership",
        "subjects.subject",
        "subjects.historicalsubject",
        "randomization.allocation",
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
            "randomization.allocation",
            "randomization.historicalallocation",
        ),
        "subjects.add_site",
        "subjects.change_site",
        "subjects.add_sitemembership",
        "subjects.change_sitemembership",
    ],
    Role.SPONSOR: _view("subjects.site", "subjects.subject"),
    Role.STATISTICIAN: _view(
        "subjects.site",
        "subjects.subject",
        "randomization.randomizationlist",
        "randomization.historicalrandomizationlist",
        "randomization.stratum",
        "randomization.slot",
        "randomization.allocation",
        "randomization.historicalallocation",
    ),
}


# Eligibility CRF. Signatures are made only by ``eligibility.services`` (password re-entry), so no
# role adds or changes them directly.
_ELIGIBILITY_ALL = _view(
    "eligibility.eligibilityassessment",
    "eligibility.historicaleligibilityassessment",
    "eligibility.eligibilitysignature",
    "eligibility.historicaleligibilitysignature",
    "eligibility.priortherapy",
    "eligibility.historicalpriortherapy",
)
_ELIGIBILITY_ENTRY = [
    *_ELIGIBILITY_ALL,
    "eligibility.add_eligibilityassessment",
    "eligibility.change_eligibilityassessment",
]
_ELIGIBILITY_READ = _view(
    "eligibility.eligibilityassessment",
    "eligibility.eligibilitysignature",
    "eligibility.priortherapy",
)
for _role, _perms in {
    Role.SITE_STAFF: _ELIGIBILITY_ENTRY,
    Role.INVESTIGATOR: _ELIGIBILITY_ENTRY,
    Role.DATA_MANAGER: _ELIGIBILITY_ALL,
    Role.MONITOR: _ELIGIBILITY_ALL,
    Role.SPONSOR: _ELIGIBILITY_READ,
    Role.STATISTICIAN: _ELIGIBILITY_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]

# Adverse events. The AE CRF is entered on the site forms through ``adverse_events.services``;
# the admin shows AEs and the CTCAE dictionary read-only (the dictionary is loaded by load_ctcae).
_AE_READ = _view(
    "adverse_events.ctcaeterm", "adverse_events.adverseevent", "adverse_events.aecausality"
)
_AE_ALL = [
    *_AE_READ,
    *_view(
        "adverse_events.historicaladverseevent",
        "adverse_events.historicalaecausality",
        "adverse_events.historicalctcaeterm",
    ),
]
_AE_ENTRY = [
    *_AE_ALL,
    "adverse_events.add_adverseevent",
    "adverse_events.change_adverseevent",
    "adverse_events.add_aecausality",
    "adverse_events.change_aecausality",
]
for _role, _perms in {
    Role.SITE_STAFF: _AE_ENTRY,
    Role.INVESTIGATOR: _AE_ENTRY,
    Role.DATA_MANAGER: _AE_ALL,
    Role.MONITOR: _AE_ALL,
    Role.SPONSOR: _AE_READ,
    Role.STATISTICIAN: _AE_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]

# Study drug exposure: entered on the site forms through ``treatment.services``; the admin
# shows cycles, IV doses and sorafenib periods read-only.
_TREATMENT_READ = _view("treatment.cycle", "treatment.ivdose", "treatment.oraldosingperiod")
_TREATMENT_ALL = [
    *_TREATMENT_READ,
    *_view(
        "treatment.historicalcycle",
        "treatment.historicalivdose",
        "treatment.historicaloraldosingperiod",
    ),
]
for _role, _perms in {
    Role.SITE_STAFF: _TREATMENT_ALL,
    Role.INVESTIGATOR: _TREATMENT_ALL,
    Role.DATA_MANAGER: _TREATMENT_ALL,
    Role.MONITOR: _TREATMENT_ALL,
    Role.SPONSOR: _TREATMENT_READ,
    Role.STATISTICIAN: _TREATMENT_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]

# RECIST tumor assessments: entered on the site forms through ``efficacy.services``; the admin
# shows lesions, assessments and their measurements read-only.
_EFFICACY_MODELS = (
    "targetlesion",
    "nontargetlesion",
    "tumorassessment",
    "targetmeasurement",
    "nontargetassessment",
)
_EFFICACY_READ = _view(*(f"efficacy.{m}" for m in _EFFICACY_MODELS))
_EFFICACY_ALL = [*_EFFICACY_READ, *_view(*(f"efficacy.historical{m}" for m in _EFFICACY_MODELS))]
for _role, _perms in {
    Role.SITE_STAFF: _EFFICACY_ALL,
    Role.INVESTIGATOR: _EFFICACY_ALL,
    Role.DATA_MANAGER: _EFFICACY_ALL,
    Role.MONITOR: _EFFICACY_ALL,
    Role.SPONSOR: _EFFICACY_READ,
    Role.STATISTICIAN: _EFFICACY_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]

# Data queries. Every transition (raise, answer, close, reopen, cancel) goes through
# ``queries.services`` (who may make it is asked of ``core.access``): no role adds, changes or
# deletes a query or a message in the admin; the study team and the sites read them.
_QUERIES_READ = _view("queries.dataquery", "queries.querymessage")
_QUERIES_ALL = [
    *_QUERIES_READ,
    *_view("queries.historicaldataquery", "queries.historicalquerymessage"),
]
for _role, _perms in {
    Role.SITE_STAFF: _QUERIES_ALL,
    Role.INVESTIGATOR: _QUERIES_ALL,
    Role.DATA_MANAGER: _QUERIES_ALL,
    Role.MONITOR: _QUERIES_ALL,
    Role.SPONSOR: _QUERIES_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]

# End of treatment, survival follow-up, end of study: entered on the site forms through
# ``survival.services``; the admin shows them read-only.
_SURVIVAL_READ = _view(
    "survival.endoftreatment",
    "survival.survivalfollowup",
    "survival.subsequenttherapy",
    "survival.endofstudy",
)
_SURVIVAL_ALL = [
    *_SURVIVAL_READ,
    *_view(
        "survival.historicalendoftreatment",
        "survival.historicalsurvivalfollowup",
        "survival.historicalsubsequenttherapy",
        "survival.historicalendofstudy",
    ),
]
for _role, _perms in {
    Role.SITE_STAFF: _SURVIVAL_ALL,
    Role.INVESTIGATOR: _SURVIVAL_ALL,
    Role.DATA_MANAGER: _SURVIVAL_ALL,
    Role.MONITOR: _SURVIVAL_ALL,
    Role.SPONSOR: _SURVIVAL_READ,
    Role.STATISTICIAN: _SURVIVAL_READ,
}.items():
    ROLE_PERMISSIONS[_role] = [*ROLE_PERMISSIONS[_role], *_perms]


def sync_role_permissions(**kwargs) -> None:
    """post_migrate receiver: each role group holds exactly the permissions declared above.
    A change it makes is in the security log with this module as its reason."""
    from django.contrib.auth.models import Group, Permission

    from .events import change_reason

    with change_reason("Role permissions set by migrate from accounts/roles.py"):
        _sync_role_permissions(Group, Permission)


def _sync_role_permissions(Group, Permission) -> None:
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
