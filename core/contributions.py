"""What a project app may contribute to the apps below it, as types.

A lower app calls into the apps above it without importing them: each app declares everything
it contributes in one module, ``<app>/contributions.py``, as ``CONTRIBUTIONS =
AppContributions(...)`` built from real imports of its functions and lists, and its AppConfig
returns it (``ProjectAppConfig.contributions``). ``core.registry`` joins them in layer order.
A registry as data, seen by imports and types: no signal, no dotted string, no module found by
its name.

The types of the values are defined where they are used (``core.export_spec``,
``core.datasets``, ``core.edit_checks``, ``core.demo``); this module only names them, so it
imports nothing of the project at run time and every module of core may import it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date
from types import ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    from django.db.models import Model
    from django.http import HttpRequest

    from .datasets import Dataset
    from .demo import DemoContext
    from .edit_checks import EditCheck
    from .export_spec import ExportForm, SignedForm


# --- the subject page and the CRF pages (core.panels, core.pages) ------------------------------


class SubjectPanel(Protocol):
    """The app's panel of the subject page: (template name, its context)."""

    def __call__(self, request: HttpRequest, subject: Any, /) -> tuple[str, dict[str, Any]]: ...


class RecordFieldFlags(Protocol):
    """What the app shows beside each field of a CRF record: {field name: HTML}, ``""`` for
    the record as a whole. ``form``: the record's edit form on the page, if any."""

    def __call__(
        self, request: HttpRequest, record: Model, /, *, form: Any = None
    ) -> Mapping[str, str]: ...


class RecordAction(Protocol):
    """A write a POST of a CRF form asks for besides the form's own (a query's answer):
    ``run()`` makes it (refused with a ``DomainError``) and returns the sentence to show;
    ``field`` is where a refusal shows."""

    @property
    def field(self) -> str: ...

    def run(self) -> str: ...


class RecordFormAction(Protocol):
    """What a POST of ``record``'s edit form asks this app to do with it: one action, several,
    or None."""

    def __call__(
        self, request: HttpRequest, record: Model, /
    ) -> RecordAction | Sequence[RecordAction] | None: ...


# --- writes and locks (core.audit, core.access, queries.sweep) ---------------------------------


class WriteGuard(Protocol):
    """Asked by every audited write first, in its transaction: refuses it (a ``DomainError``)
    or acts on what it changes. ``deleting``: the write deletes ``instances``."""

    def __call__(
        self, instances: list[Model], /, *, user: Any, reason: str, deleting: bool = False
    ) -> None: ...


class LockState(Protocol):
    """("frozen" or "locked", a sentence) when ``obj``'s data may not change, else None."""

    def __call__(self, obj: Model, /) -> tuple[str, str] | None: ...


class Locked(Protocol):
    """What is locked, for a sweep: ``record`` is (content type id, object id)."""

    def covers(self, subject_id: int, record: tuple[int, int], /) -> bool: ...


class LockedData(Protocol):
    """What is locked now (read once per sweep)."""

    def __call__(self) -> Locked: ...


# --- a subject's data changed (core.registry.notify_subject_change, subjects.services) ---------


class AfterSubjectChange(Protocol):
    """After a transaction that wrote this subject's data commits (the edit checks)."""

    def __call__(self, subject_id: int, /) -> None: ...


class OnSubjectDataChange(Protocol):
    """In the transaction that changes a subject's own data, before its save: an app keeping
    something derived from it acts (eligibility voids a signature)."""

    def __call__(self, subject: Any, /, *, user: Any, reason: str) -> None: ...


# --- the visit calendar (treatment.selectors.calendars) ----------------------------------------


@dataclass(frozen=True)
class CalendarFacts:
    """What the apps above treatment tell the visit calendar of one subject (the keyword
    arguments of ``treatment.schedule.calendar`` that treatment cannot read itself). Each app
    gives the facts of its own CRFs and leaves the others at their defaults; ``merged`` joins
    them."""

    # efficacy: the tumor assessments done, and the first progression (no scan after it)
    tumor_assessments_done: tuple[date, ...] = ()
    tumor_assessments_until: date | None = None
    # survival: the end of treatment (its date of last dose), the follow-up contacts, and the
    # end of follow-up (death, end of study, withdrawal)
    end_of_treatment: date | None = None
    last_dose: date | None = None
    survival_contacts_done: tuple[date, ...] = ()
    follow_up_until: date | None = None

    def merged(self, other: CalendarFacts) -> CalendarFacts:
        """These facts with those ``other`` gives (a fact left at its default gives nothing)."""
        given = {
            f.name: value for f in fields(other) if (value := getattr(other, f.name)) != f.default
        }
        return CalendarFacts(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **given})


class CalendarFactsOf(Protocol):
    """The calendar facts of many subjects in a fixed number of queries: ``subject_ids`` is a
    list of ids or a queryset of them; subjects without a fact may be left out."""

    def __call__(self, subject_ids: Iterable[int], /) -> Mapping[int, CalendarFacts]: ...


# --- the site's pages (edc.urls) --------------------------------------------------------------


class SiteUrls(NamedTuple):
    """The app's pages: its URLconf module (its ``app_name`` is the namespace) under ``prefix``
    ("subjects/<str:identifier>/treatment/", or "" when its patterns hold the whole path)."""

    prefix: str
    urlconf: ModuleType


# --- the sponsor's API (core.api) --------------------------------------------------------------


class ApiRoute(NamedTuple):
    """An endpoint that is not an exported form (a report): registered on the API's router."""

    prefix: str
    viewset: type
    basename: str


# --- the demo (core.demo) ----------------------------------------------------------------------


class DemoSeeder(Protocol):
    """Writes the app's part of the demo study, building on what the apps below left in
    ``ctx``."""

    def __call__(self, ctx: DemoContext, /) -> None: ...


# --- everything an app contributes -------------------------------------------------------------


@dataclass(frozen=True)
class AppContributions:
    """Everything one app contributes; what it leaves out is empty (or None).

    ``role_permissions``: role (``core.roles.Role``) -> the permissions ("app.codename") the
    role's group holds on this app's models (``accounts.roles`` syncs the groups to them).
    ``seed`` runs in the first pass of the demo seeders, ``seed_follow_up`` in the second."""

    site_urls: SiteUrls | None = None
    subject_panel: SubjectPanel | None = None
    record_field_flags: RecordFieldFlags | None = None
    record_form_action: RecordFormAction | None = None
    export_forms: tuple[ExportForm, ...] = ()
    signed_forms: tuple[SignedForm, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    edit_checks: tuple[EditCheck, ...] = ()
    api_routes: tuple[ApiRoute, ...] = ()
    calendar_facts: CalendarFactsOf | None = None
    guard_write: WriteGuard | None = None
    lock_state: LockState | None = None
    locked_data: LockedData | None = None
    after_subject_change: AfterSubjectChange | None = None
    on_subject_data_change: OnSubjectDataChange | None = None
    seed: DemoSeeder | None = None
    seed_follow_up: DemoSeeder | None = None
    role_permissions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@runtime_checkable
class ContributingApp(Protocol):
    """A project app's config (``core.apps.ProjectAppConfig``), as ``core.registry`` reads it."""

    label: str

    def contributions(self) -> AppContributions: ...
