"""What an edit check is, for every app that declares checks.

An app declares its ``EditCheck``s in its ``contributions``, in the lowest app whose imports can
express them; the sweep, query pages, admin and exports read the joined registry. A finder must
be set-wise (one query over the study or a ``Scope``), and "today" is each row's site's date
(``Scope.site_today``), never the server's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import models
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, Value
from django.utils import timezone

from .app_settings import merged_settings
from .site_time import SiteDate

# The earliest of the world's zones (Kiribati's Line Islands) is UTC+14: no site's date is later.
_EARLIEST_ZONE = timedelta(hours=14)


# The numbers of the edit checks that are not the protocol's (those stay in
# ``eligibility.settings``). A deployment overrides any of them with the Django setting
# ``EDIT_CHECK_SETTINGS`` (a dict with the same keys), never by editing a check.
EDIT_CHECK_DEFAULTS: dict[str, int] = {
    # SUBJ-005: a consented subject still in screening after this many days gets a query.
    "screening_max_days": 28,
    # ELIG-002: the planned randomization date at most this many days after the CRF was saved.
    "planned_randomization_max_days": 28,
    # Saves of one subject within this many seconds run its checks once (the on-commit task
    # waits this long, so a burst of saves is checked together: ``queries.scheduling``).
    "debounce_seconds": 5,
}


def edit_check_settings() -> dict[str, int]:
    return merged_settings("EDIT_CHECK_SETTINGS", EDIT_CHECK_DEFAULTS)


class Severity(models.TextChoices):
    ERROR = "error", "Error"
    WARNING = "warning", "Warning (to confirm)"


@dataclass(frozen=True)
class Scope:
    """Where and when the checks look: all subjects (``subject_ids`` None) or some; ``now``."""

    subject_ids: Collection[int] | None = None
    now: datetime = field(default_factory=timezone.now)

    @property
    def latest_today(self) -> date:
        """The latest date any site can have at ``now``: rows late against it may be late at
        their site; others are not."""
        return (self.now.astimezone(UTC) + _EARLIEST_ZONE).date()

    def site_today(self, site_path: str) -> SiteDate:
        """SQL: the date at each row's site (``site_path``) at ``now``."""
        return SiteDate(Value(self.now, output_field=DateTimeField()), site_path)

    def narrow(self, queryset: models.QuerySet, subject_path: str) -> models.QuerySet:
        """``queryset`` over the scope's subjects, unordered: a finder's rows are a set (no sort,
        and no join for a model's default ordering)."""
        queryset = queryset.order_by()
        if self.subject_ids is None:
            return queryset
        return queryset.filter(**{f"{subject_path}__in": list(self.subject_ids)})


def days_between(later, earlier) -> ExpressionWrapper:
    """SQL: the interval from ``earlier`` to ``later`` (two date expressions)."""
    return ExpressionWrapper(later - earlier, output_field=DurationField())


def record_label(identifier: str, what: str = "") -> str:
    """How a violation names its record: the subject's identifier and what record of it."""
    return f"{identifier} {what}".strip()


def _json(value):
    if isinstance(value, date | datetime):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


@dataclass(frozen=True)
class Violation:
    """One record breaking one check: the query is keyed on (check, record, field); ``values``
    tell whether a value a data manager confirmed correct has changed since."""

    subject_id: int
    site_id: int
    model: type[models.Model]
    object_id: int
    field: str
    record_label: str
    message: str
    values: dict

    @property
    def snapshot(self) -> dict:
        return {name: _json(value) for name, value in self.values.items()}

    @property
    def value_key(self) -> str:
        text = json.dumps(self.snapshot, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RecordRows:
    """The rows a finder reads of ``model`` and the violation on a row's record, declared once
    per model: ``columns`` (for ``values()``) are the pk, the subject's id, site id and identifier
    reached by ``subject_path`` ("" when ``model`` is the subject), then ``extra``; the record is
    named by the identifier and ``what`` (text, or row -> text: "AE 3"). A finder starts from
    ``narrowed(scope)``."""

    model: type[models.Model]
    what: str | Callable[[dict], str] = ""
    subject_path: str = "subject"
    extra: tuple[str, ...] = ()

    def _subject(self, name: str) -> str:
        return f"{self.subject_path}__{name}" if self.subject_path else name

    @property
    def _subject_id(self) -> str:
        return f"{self.subject_path}_id" if self.subject_path else "pk"

    @property
    def columns(self) -> tuple[str, ...]:
        return (
            "pk",
            self._subject_id,
            self._subject("site_id"),
            self._subject("subject_identifier"),
            *self.extra,
        )

    def narrowed(self, scope: Scope) -> models.QuerySet:
        """Every record of ``model`` of the scope's subjects (``Scope.narrow``)."""
        return scope.narrow(self.model._default_manager.all(), self.subject_path or "pk")

    def violation(self, row: dict, field: str, message: str, values: dict) -> Violation:
        what = self.what(row) if callable(self.what) else self.what
        return Violation(
            row[self._subject_id],
            row[self._subject("site_id")],
            self.model,
            row["pk"],
            field,
            record_label(row[self._subject("subject_identifier")], what),
            message,
            values,
        )


@dataclass(frozen=True)
class EditCheck:
    code: str
    title: str  # the sentence a coordinator reads in the list of checks
    model: type[models.Model]
    fields: tuple[str, ...]
    severity: str
    finder: Callable[[Scope], Iterable[Violation]]

    def find(self, scope: Scope) -> list[Violation]:
        return list(self.finder(scope))
