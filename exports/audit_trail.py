"""The audit trail of the API (``/api/v1/audit-trail/``): every history row of every audited
model that belongs to a site, with its field-level changes, scoped to the reader's sites and
masked for the sponsor's people.

The order (history date, model label, history id) is total, so keyset pages are stable; a page
is made in a number of queries that does not depend on its size: each model's next keys, merged
in Python, then each model's rows of the page with their previous versions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from django.apps import apps
from django.db.models import CharField as CharFieldType
from django.db.models import F, Model, OuterRef, Q, QuerySet, Subquery, Value

from core.access import DIRECT_IDENTIFIER_FIELDS
from core.audit import HIDDEN_VALUE
from core.registry import project_app_labels

from . import params, records
from .formatting import masked, plain, utc_iso
from .pagination import after_merged

TYPES = {"+": "created", "~": "changed", "-": "deleted"}
PARAMETERS = ("model", "subject", "site", "type", "since")
ORDER = "audit-trail"
COLUMNS = [
    "model",
    "record_id",
    "history_id",
    "subject",
    "site",
    "type",
    "user",
    "at",
    "reason",
    "changes",
]


def audited_models() -> dict[str, type[Model]]:
    """label ("adverse_events.adverseevent") -> model, of every audited model with a site."""
    labels = project_app_labels()
    found = {
        model._meta.label_lower: model
        for model in apps.get_models()
        if model._meta.app_label in labels
        and hasattr(model, "history")
        and hasattr(model, "site_lookup")
    }
    return dict(sorted(found.items()))


def _site_path(model) -> str:
    return "code" if model.site_lookup == "pk" else f"{model.site_lookup}__code"


def _subject_path(model) -> str | None:
    lookup = getattr(model, "subject_lookup", None)
    if lookup is None:
        return None
    return "subject_identifier" if lookup == "pk" else f"{lookup}__subject_identifier"


@dataclass(frozen=True)
class Filters:
    models: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    since: datetime | None = None

    @classmethod
    def read(cls, query) -> Filters:
        known = audited_models()
        for name in query.getlist("model"):
            if name not in known:
                params.refuse("model", f"model {name!r} is not audited here: {', '.join(known)}.")
        codes = {v: k for k, v in TYPES.items()}
        for name in query.getlist("type"):
            if name not in codes:
                params.refuse("type", f"type {name!r} is not one of: {', '.join(codes)}.")
        since = query.get("since")
        return cls(
            models=tuple(query.getlist("model")),
            subjects=tuple(query.getlist("subject")),
            sites=tuple(query.getlist("site")),
            types=tuple(codes[t] for t in query.getlist("type")),
            since=None if since is None else params.parse_datetime("since", since),
        )

    def history(self, label: str, model, user) -> QuerySet | None:
        """The model's history rows the user sees, filtered (None: none can match)."""
        if self.models and label not in self.models:
            return None
        history = records.scoped_history(model.history.all(), model, user)
        if self.subjects:
            path = _subject_path(model)
            if path is None:
                return None
            history = history.filter(**{f"{path}__in": self.subjects})
        if self.sites:
            history = history.filter(**{f"{_site_path(model)}__in": self.sites})
        if self.types:
            history = history.filter(history_type__in=self.types)
        if self.since is not None:
            history = history.filter(history_date__gte=self.since)
        return history


# --- the page's keys: a merge of each model's first rows -----------------------------------------


def page_keys(histories: dict[str, QuerySet], position, size: int, backwards=False) -> list:
    """The first ``size + 1`` keys (date, label, history id) after ``position``."""
    order = ("-history_date", "-history_id") if backwards else ("history_date", "history_id")
    candidates = []
    for label, history in histories.items():
        if position is not None:
            after = after_merged(
                label, position, backwards, date_field="history_date", key_field="history_id"
            )
            history = history.filter(after)
        keys = history.order_by(*order).values_list("history_date", "history_id")[: size + 1]
        candidates.extend((date, label, history_id) for date, history_id in keys)
    candidates.sort(reverse=backwards)
    return candidates[: size + 1]


# --- the rows of a page --------------------------------------------------------------------------


def _previous_version(model) -> Subquery:
    earlier = Q(history_date__lt=OuterRef("history_date")) | Q(
        history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id")
    )
    pk_name = model._meta.pk.attname
    return Subquery(
        model.history.filter(earlier, **{pk_name: OuterRef(pk_name)})
        .order_by("-history_date", "-history_id")
        .values("history_id")[:1]
    )


def _shown(field, value, identifiers: bool):
    if identifiers:
        return plain(value)
    if field.name in DIRECT_IDENTIFIER_FIELDS and value not in (None, ""):
        return HIDDEN_VALUE
    return plain(masked(value, DIRECT_IDENTIFIER_FIELDS))


@cache
def tracked_fields(model) -> tuple:
    """The fields the history keeps of ``model`` (its key aside)."""
    return tuple(f for f in model.history.model.tracked_fields if not f.primary_key)


def changes(model, row, previous, identifiers: bool) -> list[dict]:
    """Field-level changes of a history row against the record's previous version: every field
    with a value for a creation (old null), the differing fields for a change, none for a
    deletion (the previous version holds what was deleted)."""
    if row.history_type == "-":
        return []
    found = []
    for field in tracked_fields(model):
        new = getattr(row, field.attname)
        old = None if previous is None else getattr(previous, field.attname)
        if (previous is None and new in (None, "")) or (previous is not None and old == new):
            continue
        found.append(
            {
                "field": field.name,
                "old": _shown(field, old, identifiers),
                "new": _shown(field, new, identifiers),
            }
        )
    return found


def rows_of(keys: list, user) -> list[dict]:
    """The audit-trail rows of ``keys`` (date, label, history id), in their order: per model on
    the page, one query for the previous versions' ids, one for the rows and those versions."""
    models = audited_models()
    identifiers = records.identifiers_for(user)
    wanted: dict[str, list[int]] = {}
    for _, label, history_id in keys:
        wanted.setdefault(label, []).append(history_id)
    found = {}
    for label, ids in wanted.items():
        model = models[label]
        subject_path = _subject_path(model)
        # Two queries, each reading the history by its keys: one that names the rows and
        # their previous versions together ("in the page's ids or in a subquery's") has the
        # database scan the whole history table.
        previous = dict(
            model.history.filter(history_id__in=ids)
            .annotate(_previous=_previous_version(model))
            .values_list("history_id", "_previous")
        )
        wanted_ids = {*ids, *(p for p in previous.values() if p is not None)}
        fetched = {
            row.history_id: row
            for row in model.history.filter(history_id__in=wanted_ids)
            .select_related("history_user")
            .annotate(
                _subject=F(subject_path)
                if subject_path
                else Value(None, output_field=CharFieldType()),
                _site=F(_site_path(model)),
            )
        }
        for history_id in ids:
            found[(label, history_id)] = row_dict(
                label,
                model,
                fetched[history_id],
                fetched.get(previous.get(history_id)),
                identifiers,
            )
    return [found[(label, history_id)] for _, label, history_id in keys]


def row_dict(label, model, row, previous, identifiers: bool) -> dict:
    user = row.history_user
    return {
        "model": label,
        "record_id": getattr(row, model._meta.pk.attname),
        "history_id": row.history_id,
        "subject": row._subject,
        "site": row._site,
        "type": TYPES[row.history_type],
        "user": user.get_username() if user else None,
        "at": utc_iso(row.history_date),
        "reason": row.history_change_reason or "",
        "changes": changes(model, row, previous, identifiers),
    }


def histories(filters: Filters, user) -> dict[str, QuerySet]:
    found = {}
    for label, model in audited_models().items():
        history = filters.history(label, model, user)
        if history is not None:
            found[label] = history
    return found


def page(filters: Filters, user, position, size: int, backwards: bool = False):
    """(rows, keys of the rows, more beyond) of one page after (before) ``position``."""
    keys = page_keys(histories(filters, user), position, size, backwards)
    more = len(keys) > size
    keys = keys[:size]
    if backwards:
        keys.reverse()
    return rows_of(keys, user), keys, more


def every_row(filters: Filters, user, chunk: int = 1000) -> Iterator[dict]:
    """The whole trail, ``chunk`` rows at a time (the CSV): memory flat whatever its length."""
    position = None
    while True:
        rows, keys, more = page(filters, user, position, chunk)
        yield from rows
        if not more:
            return
        position = keys[-1]
