"""The demo study built by ``manage.py seed_demo``.

Each app contributes a ``seed(ctx)`` and optionally ``seed_follow_up(ctx)``; ``run_seeders`` runs
them in layer order, each building on the shared ``DemoContext``. The default demo goes through
the services one record at a time, so it has the audit trail users make; a large one
(``ctx.bulk``) writes each record once in its final state, checked by the models' own rules
(``check_rules``) and given one '+' history record (``bulk_insert``).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection, models
from django.utils import timezone

from . import registry
from .registry import subject_changes_unannounced

BULK_FROM = 1000  # subjects: from this many, the seeders write in bulk
BULK_REASON = "Demo study loaded in bulk (seed_demo)"
PROGRESS_EVERY = 1000  # subjects between two progress lines of a bulk seeder
DEMO_TIME_ZONE = "Asia/Shanghai"  # the demo's hospitals (China keeps one zone, UTC+8)


def demo_today() -> date:
    """Today at the demo's sites: the day the demo is seeded on, as its sites count days."""
    return timezone.localdate(timezone=ZoneInfo(DEMO_TIME_ZONE))


@dataclass
class DemoContext:
    n_subjects: int
    rng: random.Random
    today: date
    write: Callable[[str], object]
    password: str | None = None
    bulk: bool = False
    min_sites: int = 0  # at least this many sites (the export benchmark's: 20)
    sites: list = field(default_factory=list)
    users: dict = field(default_factory=dict)  # role -> list of users
    credentials: list = field(default_factory=list)  # (username, role, sites, password)
    subjects: list = field(default_factory=list)
    plan: dict = field(default_factory=dict)  # bulk path: subject id -> its storyline (a dict)
    admin: object = None  # the superuser the seeders act as where no site role applies
    started: float = field(default_factory=time.perf_counter)
    steps: list = field(default_factory=list)  # (app label, pass, seconds) of each seeder run
    _site_users: dict = field(default_factory=dict, init=False, repr=False)

    def new_password(self) -> str:
        return self.password or secrets.token_urlsafe(9)

    def site_user(self, role: str, site):
        """A user holding ``role`` at ``site`` (looked up once per role and site)."""
        key = (role, site.pk)
        if key not in self._site_users:
            self._site_users[key] = self._find_site_user(role, site)
        return self._site_users[key]

    def _find_site_user(self, role: str, site):
        for user in self.users.get(role, []):
            if any(m.site_id == site.pk for m in user.site_memberships.all()):
                return user
        raise LookupError(f"no {role} at site {site.code} in the demo")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def progress(self, text: str) -> None:
        """A progress line with the time since the seeding started."""
        self.write(f"[{self.elapsed:6.1f} s] {text}")

    def at(self, day: date, hour: int = 12, minute: int = 0) -> datetime:
        """A moment of ``day`` (UTC), never later than now."""
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
        return min(moment, timezone.now())


def chunks(items: list, size: int = PROGRESS_EVERY) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_rules(obj: models.Model, *, skip: Iterable[str] = ()) -> None:
    """The model's own rules on a record about to be inserted in bulk: what ``audited_save``
    checks (``full_clean``), except the per-record look-ups of references and uniqueness, which
    the database's keys and constraints check on insert.

    As ``clean_fields``, every field's value is cleaned and validated, and the model's ``clean``
    runs; a value already found valid for the same field in this bulk load is not validated
    again (a load repeats the same grades, dates and terms thousands of times)."""
    errors = {}
    for f in _checked_fields(type(obj), tuple(skip)):
        raw = getattr(obj, f.attname)
        if f.blank and raw in f.empty_values:
            continue
        key = _value_key(f, raw)
        if key is not None and key in _valid_values:
            continue
        try:
            cleaned = f.clean(raw, obj)
        except ValidationError as exc:
            errors[f.name] = exc.error_list
            continue
        if key is not None and _value_key(f, cleaned) == key:
            _valid_values.add(key)
        else:
            setattr(obj, f.attname, cleaned)
    if errors:
        raise ValidationError(errors)
    obj.clean()


# (field, type, value) of the values ``check_rules`` found valid: kept for one run of the
# seeders (``run_seeders`` empties it), as a date's validity depends on the day.
_valid_values: set = set()


@cache
def _checked_fields(model: type[models.Model], skip: tuple[str, ...]) -> list[models.Field]:
    """The fields ``clean_fields`` validates, but the references (checked by the database's
    keys) and ``skip``."""
    return [
        f
        for f in model._meta.fields
        if not (f.concrete and f.is_relation) and f.name not in skip and not f.generated
    ]


def _value_key(field: models.Field, value) -> tuple | None:
    """A value's identity for ``_valid_values`` (its type and value; a Decimal's digits and
    exponent too), or None when it cannot be one (unhashable)."""
    exact = value.as_tuple() if isinstance(value, Decimal) else value
    try:
        hash(exact)
    except TypeError:
        return None
    return (field, type(value), exact)


def bulk_insert(
    model: type[Any],
    objs: Iterable[Any],
    *,
    user=None,
    user_of: Callable[[models.Model], object] | None = None,
    reason: str = BULK_REASON,
) -> list[models.Model]:
    """Insert new records of an audited model with one '+' history record each, made by
    ``user_of(record)`` (e.g. the site's coordinator) or ``user``
    (``AuditedQuerySet.bulk_create_with_history``)."""
    objs = list(objs)
    if user_of is not None:
        for obj in objs:
            obj._history_user = user_of(obj)
    try:
        return model.objects.bulk_create_with_history(objs, user=user, reason=reason)
    finally:
        for obj in objs:
            obj.__dict__.pop("_history_user", None)


def run_seeders(ctx: DemoContext, *, skip_apps: Iterable[str] = ()) -> None:
    """Every app's seeders (but those of ``skip_apps``, by label: a benchmark seeds the study
    without the queries app's first sweep, to time it itself)."""
    skip = set(skip_apps)
    loaded = False  # the bulk load is over (the first seed_follow_up comes next)
    with subject_changes_unannounced(), _forgetting_valid_values():
        for label, pass_name, seed in registry.demo_seeders():
            if label in skip:
                continue
            started = time.perf_counter()
            if ctx.bulk and pass_name == "seed_follow_up" and not loaded:
                refresh_statistics()
                loaded = True
            seed(ctx)
            ctx.steps.append((label, pass_name, time.perf_counter() - started))


@contextmanager
def _forgetting_valid_values():
    _valid_values.clear()
    try:
        yield
    finally:
        _valid_values.clear()


def refresh_statistics() -> None:
    """After a bulk load, on PostgreSQL: ``ANALYZE``, so that the planner knows the new sizes and
    values of the tables before the first sweep reads them (autovacuum would, but only a while
    after the commit; meanwhile one subject's checks can take a plan made for empty tables)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
