"""The exported records and their rows, for every export format (API, CSV, ODM, Dataset-JSON).

Everything reads through the registry (each app's ``export_forms``) and ``core.access``: an export
holds only the sites its user may see, and no direct identifier unless
``access.sees_direct_identifiers``. The formats only shape these rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import or_

from django.apps import apps
from django.db import connections
from django.db.models import Q, QuerySet

from core import access, registry
from core.errors import DomainError
from core.export_spec import ChildGroup, ExportForm

from .pagination import after_merged

CHUNK = 2000


class UnknownForm(DomainError):
    pass


def export_forms() -> list[ExportForm]:
    return registry.export_forms()


def form_named(name: str) -> ExportForm:
    for form in export_forms():
        if form.name == name or form.code == name.upper():
            return form
    names = ", ".join(f.name for f in export_forms())
    raise UnknownForm(f"There is no export {name!r}. The exports: {names}.")


def identifiers_for(user) -> bool:
    return access.sees_direct_identifiers(user)


# A page filtered by ``updated_since`` reads the changed records' keys first when there are at
# most this many history rows per source since then (see ``changed_since``).
FEW_CHANGES = 5000


def records(
    form: ExportForm, user, *, since: datetime | None = None, paged: bool = False
) -> QuerySet:
    queryset = access.scope_to_user(form.queryset(), user)
    if since is not None:
        queryset = queryset.filter(changed_since(form, since, paged=paged))
    return queryset


def changed_since(form: ExportForm, since: datetime, *, paged: bool = False) -> Q:
    """Records with a history row (made, changed) at or after ``since``, or whose child rows or
    ``changed_with`` records have one (made, changed or deleted): exact, whatever ``updated``
    fields say.

    For a page (``paged``) of a short history since then (at most ``FEW_CHANGES`` rows a
    source: the usual incremental pull), the changed records' keys are read first, one query
    a source along its date index, and the page reads those records by their primary key:
    a subquery instead would have the database walk the primary key's index through every
    unchanged record before the page's. A long history is hashed by the database."""
    sources = [(form.model_class().history.filter(history_date__gte=since), "id")]
    linked = [(g.model, g.parent_field) for g in form.children if g.model and g.parent_field]
    for label, parent_field in [*linked, *form.changed_with]:
        history = apps.get_model(label).history.filter(history_date__gte=since)
        sources.append((history, f"{parent_field}_id"))
    if paged:
        keys = [
            list(history.values_list(column, flat=True)[: FEW_CHANGES + 1])
            for history, column in sources
        ]
        if all(len(found) <= FEW_CHANGES for found in keys):
            return Q(pk__in={key for found in keys for key in found if key is not None})
    return reduce(or_, (Q(pk__in=history.values(column)) for history, column in sources))


@contextmanager
def without_jit(alias: str = "default") -> Iterator[None]:
    """The export's big queries without PostgreSQL's JIT: the planner's costs of a query over
    the whole study make it compile the query's expressions with LLVM first, about as long as
    the query itself takes to run (the ODM's text of the adverse events: a quarter of its
    time), for a query that runs once."""
    connection = connections[alias]
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        if connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET jit")


def stream(queryset: QuerySet, chunk: int = CHUNK) -> Iterator:
    """The records, ``chunk`` at a time (server-side cursor on PostgreSQL), prefetches kept."""
    return queryset.iterator(chunk_size=chunk)


def row(form: ExportForm, record, *, identifiers: bool) -> dict:
    return {item.name: item.value(record) for item in form.visible_items(identifiers=identifiers)}


def child_rows(group: ChildGroup, record) -> list[dict]:
    return [{item.name: item.value(r) for item in group.items} for r in group.records(record)]


# --- deletions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deletion:
    export: str  # the form (or "form/child group") the record belonged to
    record_id: int
    deleted_at: datetime
    deleted_by: str
    reason: str


def _exported_models(forms: Iterable[ExportForm]):
    for form in forms:
        yield form.name, form.model_class()
        for group in form.children:
            if group.model:
                yield f"{form.name}/{group.name}", group.model_class()


def deletion_key(deletion: Deletion) -> tuple:
    """The deletions' order: (time, export, record id), total."""
    return (deletion.deleted_at, deletion.export, deletion.record_id)


def _deleted(history: QuerySet, model, user, since: datetime) -> QuerySet:
    """The deletion rows of ``model``'s ``history`` at or after ``since`` within the user's
    scope (the site is read from the deleted record's last history row)."""
    return _scoped_history(
        history.filter(history_type="-", history_date__gte=since), model, user
    ).select_related("history_user")


def _deletion(export: str, record) -> Deletion:
    return Deletion(
        export,
        record.id,
        record.history_date,
        record.history_user.get_username() if record.history_user else "",
        record.history_change_reason or "",
    )


def deletions(user, since: datetime) -> list[Deletion]:
    """Exported records deleted at or after ``since``, oldest first, within the user's scope."""
    found = []
    for export, model in _exported_models(export_forms()):
        history = _deleted(model.history.all(), model, user, since)
        found.extend(_deletion(export, r) for r in history.order_by("history_date", "id"))
    found.sort(key=deletion_key)
    return found


def deletions_page(
    user, since: datetime, position, size: int, backwards: bool = False
) -> tuple[list[Deletion], bool]:
    """(the deletions of one page after ``position`` (before it, ``backwards``), more beyond):
    each export's next ``size + 1`` deletions, read from its history's index of deletions
    (``core.crf.AuditedHistory``), merged. A page costs one query per exported model,
    whatever the number of deletions or records."""
    order = ("-history_date", "-id") if backwards else ("history_date", "id")
    found = []
    for export, model in _exported_models(export_forms()):
        history = _deleted(model.history.all(), model, user, since)
        if position is not None:
            history = history.filter(
                after_merged(export, position, backwards, date_field="history_date", key_field="id")
            )
        found.extend(_deletion(export, r) for r in history.order_by(*order)[: size + 1])
    found.sort(key=deletion_key, reverse=backwards)
    more = len(found) > size
    found = found[:size]
    if backwards:
        found.reverse()
    return found, more


def _scoped_history(history: QuerySet, model, user) -> QuerySet:
    """History rows within the user's sites: a history row keeps the record's foreign keys, so
    it follows the record's ``site_lookup`` (its own ``id`` for a site)."""
    if not access.can_read_exports(user) and not access.member_site_ids(user):
        return history.none()
    if access.sees_all_sites(user):
        return history
    lookup = access.site_lookup_of(model)
    lookup = "id" if lookup == "pk" else lookup
    return history.filter(**{f"{lookup}__in": access.member_site_ids(user)})


def scoped_history(history: QuerySet, model, user) -> QuerySet:
    """History rows of ``model`` within the user's sites (the audit trail of the API)."""
    return _scoped_history(history, model, user)
