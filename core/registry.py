"""The project's apps and what they contribute, read from their AppConfigs.

Every app of the project has an AppConfig derived from ``core.apps.ProjectAppConfig``; the list
of project apps (audit rules, the API routes, the demo seeders, the layering test) is derived from
``INSTALLED_APPS`` through its flag, never kept by hand. What each app contributes is its
``contributions()`` (``core.contributions.AppContributions``, declared in
``<app>/contributions.py``): the accessors below join them in layer order, so a lower app calls
into the apps above it without importing them.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from django.apps import AppConfig, apps
from django.db import transaction

from .contributions import (
    AfterSubjectChange,
    ApiRoute,
    AppContributions,
    CalendarFactsOf,
    ContributingApp,
    DemoSeeder,
    LockedData,
    LockState,
    OnSubjectDataChange,
    RecordFieldFlags,
    RecordFormAction,
    SiteUrls,
    SubjectPanel,
    WriteGuard,
)

if TYPE_CHECKING:
    from .datasets import Dataset
    from .edit_checks import EditCheck
    from .export_spec import ExportForm, SignedForm


def project_app_configs() -> list[AppConfig]:
    """The project's apps, in ``INSTALLED_APPS`` order (the order of the layers)."""
    return [c for c in apps.get_app_configs() if getattr(c, "edc_project_app", False)]


def project_app_labels() -> set[str]:
    return {c.label for c in project_app_configs()}


def contributions() -> list[tuple[str, AppContributions]]:
    """(app label, what it contributes) of every project app, in layer order."""
    return [
        (config.label, config.contributions())
        for config in project_app_configs()
        if isinstance(config, ContributingApp)
    ]


def site_urls() -> list[SiteUrls]:
    """The apps' pages, in layer order (``edc.urls`` includes them)."""
    return [u for _, c in contributions() if (u := c.site_urls) is not None]


def subject_panels() -> list[SubjectPanel]:
    return [h for _, c in contributions() if (h := c.subject_panel) is not None]


def record_field_flags() -> list[RecordFieldFlags]:
    return [h for _, c in contributions() if (h := c.record_field_flags) is not None]


def record_form_actions() -> list[RecordFormAction]:
    return [h for _, c in contributions() if (h := c.record_form_action) is not None]


def write_guards() -> list[WriteGuard]:
    return [h for _, c in contributions() if (h := c.guard_write) is not None]


def lock_states() -> list[LockState]:
    return [h for _, c in contributions() if (h := c.lock_state) is not None]


def locked_data() -> list[LockedData]:
    return [h for _, c in contributions() if (h := c.locked_data) is not None]


def after_subject_change() -> list[AfterSubjectChange]:
    return [h for _, c in contributions() if (h := c.after_subject_change) is not None]


def on_subject_data_change() -> list[OnSubjectDataChange]:
    return [h for _, c in contributions() if (h := c.on_subject_data_change) is not None]


def calendar_facts() -> list[CalendarFactsOf]:
    return [h for _, c in contributions() if (h := c.calendar_facts) is not None]


def export_forms() -> list[ExportForm]:
    return [item for _, c in contributions() for item in c.export_forms]


def signed_forms() -> list[SignedForm]:
    return [item for _, c in contributions() for item in c.signed_forms]


def datasets() -> list[Dataset]:
    return [item for _, c in contributions() for item in c.datasets]


def edit_checks() -> list[EditCheck]:
    return [item for _, c in contributions() for item in c.edit_checks]


def api_routes() -> list[ApiRoute]:
    return [item for _, c in contributions() for item in c.api_routes]


def demo_seeders() -> Iterator[tuple[str, str, DemoSeeder]]:
    """(app label, pass, seeder): every app's ``seed``, then every app's ``seed_follow_up``."""
    joined = contributions()
    for label, c in joined:
        if c.seed is not None:
            yield label, "seed", c.seed
    for label, c in joined:
        if c.seed_follow_up is not None:
            yield label, "seed_follow_up", c.seed_follow_up


def role_permissions() -> dict[str, list[str]]:
    """Role -> the permissions its group holds, every app's joined in layer order."""
    joined: dict[str, list[str]] = {}
    for _, c in contributions():
        for role, names in c.role_permissions.items():
            joined.setdefault(str(role), []).extend(names)
    return joined


def notify_subject_change(subject_id: int | None) -> None:
    """After the current transaction commits, tell the apps that follow subjects' data (an
    app's ``after_subject_change``: the edit checks) that this subject changed: once per
    subject per transaction, however many of its records the transaction wrote. A failing
    receiver is logged, never undoes or breaks the save (``robust``)."""
    if subject_id is None or getattr(_quiet, "active", False):
        return
    hooks = after_subject_change()
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

    # A function, not a callable object: Django logs a robust callback's failure by __qualname__.
    tell_the_apps.edc_subject_id = subject_id  # type: ignore[attr-defined]  # (mypy: no such attr)
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
