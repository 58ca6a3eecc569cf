"""What an edit check is, for every app that declares checks.

The checks themselves live with the data they look at: ``queries/checks.py`` holds the checks of
the subject, eligibility, randomization and AE CRFs, and a CRF app declares its own in
``<app>/edit_checks.py`` as a ``CHECKS`` tuple of ``EditCheck`` (found by
``core.registry.collected("edit_checks", "CHECKS")``). The sweep, the query pages, the admin and
the exports read the joined registry (``queries.checks.all_checks``) and need no change for a new
CRF.

A finder returns every violation **set-wise**: one database query over the whole study, or over
the subjects of a ``Scope``; Python only shapes the rows the query returned.

"Today" is a site's (``core.site_time``): a check that counts days up to today compares with the
date at each row's site (``Scope.site_today``), the database first keeping the rows that could
be late anywhere (``Scope.latest_today``: the date at UTC+14, the earliest of the world's zones).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import models
from django.db.models import DateTimeField, Value
from django.utils import timezone

from .site_time import SiteDate

# The earliest of the world's zones (Kiribati's Line Islands) is UTC+14: no site's date is later.
_EARLIEST_ZONE = timedelta(hours=14)


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
class EditCheck:
    code: str
    title: str  # the sentence a coordinator reads in the list of checks
    model: type[models.Model]
    fields: tuple[str, ...]
    severity: str
    finder: Callable[[Scope], Iterable[Violation]]

    def find(self, scope: Scope) -> list[Violation]:
        return list(self.finder(scope))
