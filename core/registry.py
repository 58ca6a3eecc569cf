"""The project's apps and what they register, read from their AppConfigs.

Every app of the project has an AppConfig derived from ``core.apps.ProjectAppConfig``; the list
of project apps (audit rules, the API routes, the demo seeders, the layering test) is derived from
``INSTALLED_APPS`` through its flag, never kept by hand.
"""

import importlib
import threading
from contextlib import contextmanager
from importlib.util import find_spec

from django.apps import AppConfig, apps
from django.db import transaction
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


def collected(module: str, attr: str) -> list:
    """Every project app's ``<app>.<module>.<attr>`` list, joined in layer order (apps without
    the module contribute nothing): ``api.ROUTES``, ``export.FORMS``."""
    found = []
    for config in project_app_configs():
        name = f"{config.name}.{module}"
        if find_spec(name) is not None:
            found.extend(getattr(importlib.import_module(name), attr, []))
    return found


def notify_subject_change(subject_id: int | None) -> None:
    """After the current transaction commits, tell the apps that follow subjects' data (an
    AppConfig's ``after_subject_change``: the edit checks) that this subject changed: once per
    subject per transaction, however many of its records the transaction wrote. A failing
    receiver is logged, never undoes or breaks the save (``robust``)."""
    if subject_id is None or getattr(_quiet, "active", False):
        return
    hooks = app_hooks("after_subject_change")
    if not hooks:
        return
    connection = transaction.get_connection()
    # Django's list of this transaction's on-commit callbacks: (savepoint ids, callback, robust).
    for _, callback, *_ in connection.run_on_commit:
        if getattr(callback, "edc_subject_id", None) == subject_id:
            return

    def tell_the_apps():
        for hook in hooks:
            hook(subject_id)

    tell_the_apps.edc_subject_id = subject_id
    transaction.on_commit(tell_the_apps, robust=True)


_quiet = threading.local()


@contextmanager
def subject_changes_unannounced():
    """Bulk loads (the demo seeder) write many subjects and then run one sweep themselves: the
    per-subject notifications are not made inside this block (this thread only)."""
    previous = getattr(_quiet, "active", False)
    _quiet.active = True
    try:
        yield
    finally:
        _quiet.active = previous
