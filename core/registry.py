"""The project's apps and what they register, read from their AppConfigs.

Every app of the project has an AppConfig derived from ``core.apps.ProjectAppConfig``; the list
of project apps (audit rules, the API routes, the demo seeders, the layering test) is derived from
``INSTALLED_APPS`` through its flag, never kept by hand.
"""

from django.apps import AppConfig, apps
from django.utils.module_loading import import_string


def project_app_configs() -> list[AppConfig]:
    """The project's apps, in ``INSTALLED_APPS`` order (the order of the layers)."""
    return [c for c in apps.get_app_configs() if getattr(c, "edc_project_app", False)]


def project_app_labels() -> set[str]:
    return {c.label for c in project_app_configs()}


def app_hooks(name: str) -> list:
    """The functions project apps name in their AppConfig attribute ``name`` (a dotted path), in
    layer order. This is how a lower app calls into the apps above it without importing them
    (``subject_panel``, ``on_subject_data_change``): a registry as data, not a signal."""
    return [
        import_string(path)
        for config in project_app_configs()
        if (path := getattr(config, name, None))
    ]
