"""The one audited write path, and the guards that close the ways around it.

Services write through ``audited_save``/``audited_delete`` (user and reason; a change or deletion
without a reason is refused), and every path simple-history cannot see (queryset ``update()``,
bulk writes, raw saves, history switched off) is refused here or, on PostgreSQL, by triggers. A
new write path must go through these functions, never around them. What is closed, what remains
possible and why: README ("Audit trail", "Database roles").
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date, datetime
from functools import cache
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, connections, models, transaction
from django.db.models.signals import pre_delete, pre_save
from django.utils.text import capfirst
from simple_history.models import HistoricalChanges

from . import bulk_copy, sql
from .errors import BulkChangeRefused, HistoryBypassRefused, ReasonRequired
from .registry import notify_subject_change, project_app_labels, write_guards

# Characters that show nothing: controls, format characters (zero-width space and joiners, bidi
# marks, the byte-order mark), separators (every kind of space), surrogates, private-use and
# unassigned code points, and the letters and marks that render blank (Hangul fillers, the
# combining grapheme joiner, variation selectors, Khmer inherent vowels, the blank Braille cell).
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"})
_BLANK_CODE_POINTS = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0]
    + [*range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)]
)


def is_invisible(char: str) -> bool:
    return ord(char) in _BLANK_CODE_POINTS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def clean_reason(reason: str | None) -> str:
    """The reason without the invisible characters at its ends: empty when nothing visible is
    left (a zero-width space is no reason). Inside the text nothing is touched (a joiner may
    belong to the writing)."""
    text = reason or ""
    start, end = 0, len(text)
    while start < end and is_invisible(text[start]):
        start += 1
    while end > start and is_invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def require_visible_reason(value: str) -> None:
    """Form-field validator: a reason typed with only invisible characters is refused on the
    form (services refuse it too, through ``clean_reason``)."""
    if value and not clean_reason(value):
        raise ValidationError(
            "The reason has no visible text (only spaces or invisible characters): "
            "write what changed and why.",
            code="invisible",
        )


@contextmanager
def attached_reason(instance: Any, user, reason: str):
    """Attach who and why for simple-history for one write only: a reason never outlives it.
    (``instance``: a model instance; the two attributes are simple-history's, untyped.)"""
    instance._history_user = user
    instance._change_reason = reason
    try:
        yield
    finally:
        del instance._history_user
        del instance._change_reason


def guard_write(
    instances: list[models.Model], *, user, reason: str, deleting: bool = False
) -> None:
    """Every audited write asks the apps' ``guard_write`` hooks first, in its transaction
    (``monitoring``: locked and frozen data refuse it with a sentence; a change clears the
    verification and voids the casebook signature of the data it changes). ``deleting``: the
    write deletes ``instances`` (no field of theirs is then a narrow change)."""
    for guard in write_guards():
        guard(instances, user=user, reason=reason, deleting=deleting)


def audited_save(
    instance: models.Model,
    *,
    user,
    reason: str | None = None,
    validate_only: Iterable[str] | None = None,
    guarded: bool = False,
    **save_kwargs,
):
    """Validate and save ``instance``, recording ``user`` and ``reason`` in its history.

    A new record may be saved without a reason; a change to an existing one may not.
    ``validate_only`` names the fields a service changed (and checked itself): only they are
    validated, sparing full_clean's lookups of references and uniqueness on a hot path.
    ``guarded``: the caller ran ``guard_write`` on ``instance`` (with this reason) in the current
    transaction, with the other records it writes there: the guard is not asked twice.
    """
    reason = clean_reason(reason)
    if not instance._state.adding and not reason:
        raise ReasonRequired()
    if validate_only is None:
        instance.full_clean()
    else:
        keep = set(validate_only)
        instance.clean_fields(exclude=[f.name for f in instance._meta.fields if f.name not in keep])
    if guarded and not transaction.get_connection().in_atomic_block:
        raise TypeError("guarded=True: the guard must have run in the caller's transaction")
    with transaction.atomic(), attached_reason(instance, user, reason):
        if not guarded:
            guard_write([instance], user=user, reason=reason)
        instance.save(**save_kwargs)
    notify_subject_change(subject_id_of(instance))
    return instance


def audited_delete(instance: models.Model, *, user, reason: str | None):
    reason = clean_reason(reason)
    if not reason:
        raise ReasonRequired("A reason is required to delete saved data.")
    # A deleted subject has nothing left to check; a deleted record of a subject changes it.
    is_the_subject = getattr(type(instance), "subject_lookup", None) == "pk"
    subject_id = None if is_the_subject else subject_id_of(instance)
    with transaction.atomic(), attached_reason(instance, user, reason):
        guard_write([instance], user=user, reason=reason, deleting=True)
        instance.delete()
    notify_subject_change(subject_id)


def subject_id_of(instance: models.Model) -> int | None:
    """The id of the subject a record belongs to (its model's ``subject_lookup``), for the apps
    that follow a subject's data; None for records of no subject, or of a model that says
    ``triggers_edit_checks = False`` (the queries themselves)."""
    model = type(instance)
    lookup = getattr(model, "subject_lookup", None)
    if lookup is None or not getattr(model, "triggers_edit_checks", True):
        return None
    if lookup == "pk":
        return instance.pk
    *path, last = lookup.split("__")
    value = instance
    for part in path:
        value = getattr(value, part)
    return getattr(value, f"{last}_id")


def refuse_change_without_reason(sender, instance, history_instance, **kwargs):
    """simple-history signal receiver: no change or deletion of project data without a reason."""
    if sender._meta.app_label not in project_app_labels():
        return
    if history_instance.history_type in ("~", "-") and not clean_reason(
        history_instance.history_change_reason
    ):
        raise ReasonRequired()


class AuditedQuerySet(models.QuerySet):
    """A queryset whose bulk writes cannot bypass the audit trail unnoticed."""

    model: type[Any]  # an audited model: simple-history's ``history`` (untyped) is on it

    def _refuse(self, what: str):
        raise BulkChangeRefused(
            f"{what}() on {self.model._meta.verbose_name_plural} would bypass the audit trail; "
            "change records one at a time through the service layer."
        )

    def update(self, **kwargs):
        self._refuse("update")

    def delete(self):
        self._refuse("delete")

    def bulk_update(self, objs, fields, batch_size=None):
        self._refuse("bulk_update")

    def bulk_create(self, objs, *args, **kwargs):
        self._refuse("bulk_create")

    def bulk_create_with_history(self, objs: Iterable[Any], *, user, reason: str = ""):
        """Insert many new records and one '+' history record for each, in one go (on
        PostgreSQL with COPY: ``core.bulk_copy``)."""
        objs = list(objs)
        reason = clean_reason(reason)
        guard_write(objs, user=user, reason=reason)
        if connections[self.db].vendor == "postgresql" and bulk_copy.can_copy(self.model, objs):
            created = bulk_copy.copy_with_history(
                self.model, objs, user=user, reason=reason, using=self.db
            )
        else:
            created = super().bulk_create(objs)
            self.model.history.bulk_history_create(
                created, default_user=user, default_change_reason=reason
            )
        for subject_id in {subject_id_of(obj) for obj in created}:
            notify_subject_change(subject_id)
        return created


AuditedManager = models.Manager.from_queryset(AuditedQuerySet)


def audited_models() -> list[type[models.Model]]:
    """The project's models with ``HistoricalRecords()`` (not the history models themselves)."""
    labels = project_app_labels()
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in labels
        and hasattr(model, "history")
        and not issubclass(model, HistoricalChanges)
    ]


def refuse_unrecorded_save(sender, instance, raw=False, **kwargs):
    """pre_save receiver of audited models: no save that simple-history would not record."""
    if hasattr(instance, "skip_history_when_saving"):
        how = "without its history record (skip_history_when_saving)"
    elif raw:
        how = "raw (a fixture load writes no history)"
    elif not getattr(settings, "SIMPLE_HISTORY_ENABLED", True):
        how = "while SIMPLE_HISTORY_ENABLED is off"
    else:
        return
    raise HistoryBypassRefused(
        f"Saving {sender._meta.verbose_name} {how} is refused: every change of trial data is "
        "audited. Save it through the service layer."
    )


def refuse_deletion(sender, instance, **kwargs):
    """pre_delete receiver of ``never_deleted`` models."""
    raise HistoryBypassRefused(
        f"{capfirst(str(sender._meta.verbose_name))} {instance} is never deleted: "
        f"{sender._meta.verbose_name_plural} are kept in the trial record for good."
    )


def guard_history_paths() -> None:
    """Close, for every audited model, the paths that change data without a history record.

    The base manager becomes the audited manager (as ``Meta.base_manager_name`` would name it,
    but here once for every model, those added later included, with no migration: the option
    only changes Python). Django's own saves and deletions use ``_update``/delete queries,
    which the audited queryset leaves alone; ``update()``/``bulk_update()`` on it raise.
    """
    for model in audited_models():
        manager = model._default_manager
        if model._meta.base_manager_name is None and issubclass(
            getattr(manager, "_queryset_class", models.QuerySet), AuditedQuerySet
        ):
            model._meta.base_manager_name = manager.name
            model._meta.__dict__.pop("base_manager", None)  # a cached_property
        uid = f"edc_history_guard_{model._meta.label_lower}"
        pre_save.connect(refuse_unrecorded_save, sender=model, dispatch_uid=uid)
        if getattr(model, "never_deleted", False):
            pre_delete.connect(refuse_deletion, sender=model, dispatch_uid=uid)


# --- PostgreSQL: history tables are append-only ----------------------------------------------

NO_TRUNCATE_TRIGGER = "edc_no_truncate"  # the statement trigger that refuses TRUNCATE

TRIGGER_FUNCTIONS = """
CREATE OR REPLACE FUNCTION edc_refuse_history_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records in % are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION edc_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'records in % are kept for good (audit trail): TRUNCATE refused',
        TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION edc_refuse_delete() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'records in % are never deleted: DELETE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION edc_refuse_recorded_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the recorded % of a row in % never change: UPDATE refused',
        TG_ARGV[0], TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


def append_only_models() -> list[type[models.Model]]:
    """History models of the project, and models that declare ``append_only = True``."""
    found = []
    labels = project_app_labels()
    for model in apps.get_models():
        if model._meta.app_label not in labels:
            continue
        if issubclass(model, HistoricalChanges) or getattr(model, "append_only", False):
            found.append(model)
    return found


def never_deleted_models() -> list[type[models.Model]]:
    labels = project_app_labels()
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in labels and getattr(m, "never_deleted", False)
    ]


def immutable_models() -> list[type[models.Model]]:
    labels = project_app_labels()
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in labels and len(getattr(m, "immutable_fields", ())) > 0
    ]


def protected_tables() -> dict[str, set[str]]:
    """Each table the triggers protect, with what it refuses: {"append_only"}, {"never_deleted"}
    and/or {"immutable"} (the database's view of the rules above; ``create_app_role`` reads it)."""
    tables: dict[str, set[str]] = {}
    for model in append_only_models():
        tables.setdefault(model._meta.db_table, set()).add("append_only")
    for model in never_deleted_models():
        tables.setdefault(model._meta.db_table, set()).add("never_deleted")
    for model in immutable_models():
        tables.setdefault(model._meta.db_table, set()).add("immutable")
    return tables


def _immutable_trigger_sql(model: type[Any]) -> str:
    """(``model`` declares ``immutable_fields``: names of its concrete fields.)"""
    concrete = {field.name: field for field in model._meta.concrete_fields}
    columns = [concrete[name].column for name in model.immutable_fields]
    of = ", ".join(f'"{c}"' for c in columns)
    changed = " OR ".join(f'OLD."{c}" IS DISTINCT FROM NEW."{c}"' for c in columns)
    names = sql.literal(", ".join(model.immutable_fields), with_params=False)
    table = model._meta.db_table
    return (
        f'CREATE OR REPLACE TRIGGER edc_immutable BEFORE UPDATE OF {of} ON "{table}" '
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION edc_refuse_recorded_change({names})"
    )


def install_append_only_triggers(using: str = "default", **kwargs) -> int:
    """post_migrate receiver: on PostgreSQL, refuse UPDATE/DELETE on every append-only table,
    TRUNCATE on it and on every never-deleted table, DELETE on never-deleted tables and changes
    of immutable fields. Returns how many tables it protects.

    Each trigger is enabled ALWAYS: it fires whatever the session's ``session_replication_role``
    (a superuser's ``SET session_replication_role = replica`` would otherwise silence it)."""
    from django.db import connections

    conn = connections[using] if using else connection
    if conn.vendor != "postgresql":
        return 0
    tables = set(conn.introspection.table_names())
    protected = set()
    statements = [TRIGGER_FUNCTIONS]

    def trigger(model, name, sql):
        table = model._meta.db_table
        if table in tables:
            statements.append(f"{sql};")
            statements.append(f'ALTER TABLE "{table}" ENABLE ALWAYS TRIGGER {name};')
            protected.add(table)

    for model in append_only_models():
        table = model._meta.db_table
        trigger(
            model,
            "edc_append_only",
            f'CREATE OR REPLACE TRIGGER edc_append_only BEFORE UPDATE OR DELETE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION edc_refuse_history_change()",
        )
    for model in never_deleted_models():
        table = model._meta.db_table
        trigger(
            model,
            "edc_never_deleted",
            f'CREATE OR REPLACE TRIGGER edc_never_deleted BEFORE DELETE ON "{table}" '
            "FOR EACH ROW EXECUTE FUNCTION edc_refuse_delete()",
        )
    for model in [*append_only_models(), *never_deleted_models()]:
        table = model._meta.db_table
        trigger(
            model,
            NO_TRUNCATE_TRIGGER,
            f'CREATE OR REPLACE TRIGGER {NO_TRUNCATE_TRIGGER} BEFORE TRUNCATE ON "{table}" '
            "FOR EACH STATEMENT EXECUTE FUNCTION edc_refuse_truncate()",
        )
    for model in immutable_models():
        trigger(model, "edc_immutable", _immutable_trigger_sql(model))
    if conn.in_atomic_block:
        # ALTER TABLE waits for no deferred foreign-key check: those of the transaction (a test
        # that migrates) are checked first, and deferred again after.
        statements = [
            "SET CONSTRAINTS ALL IMMEDIATE;",
            *statements,
            "SET CONSTRAINTS ALL DEFERRED;",
        ]
    with conn.cursor() as cursor:
        cursor.execute("\n".join(statements))  # one round trip: it runs after every flush too
    return len(protected)


@contextmanager
def truncation_allowed(conn):
    """Inside the caller's transaction, let it TRUNCATE the tables the triggers protect: their
    TRUNCATE triggers are disabled, and enabled again before the transaction commits (if it fails,
    the rollback enables them). Only the test runner's and a DEBUG database's ``flush`` call it
    (core/management/commands/flush.py). It is DDL, which only the tables' owner may run (as it
    may drop a trigger): no session setting opens the door, and no committed state leaves it open.
    """
    if conn.vendor != "postgresql":
        yield
        return
    if not conn.in_atomic_block:
        raise RuntimeError("truncation_allowed() runs inside a transaction (transaction.atomic).")
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE t.tgname = %s AND pg_table_is_visible(c.oid) ORDER BY 1",
            [NO_TRUNCATE_TRIGGER],
        )
        tables = [row[0] for row in cursor.fetchall()]

    def toggle(action: str) -> None:
        if tables:
            with conn.cursor() as cursor:
                cursor.execute(
                    "".join(
                        f'ALTER TABLE "{table}" {action} TRIGGER {NO_TRUNCATE_TRIGGER};'
                        for table in tables
                    )
                )

    toggle("DISABLE")
    yield  # an exception propagates: the transaction rolls back, the triggers with it
    toggle("ENABLE ALWAYS")


def display_value(field, value):
    """A stored value as a person reads it: ISO dates, choice labels, '—' for empty; a
    date-time stays one, for the page to show in the local time of the record's site."""
    if value is None or value == "":
        return "—"
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, datetime):
        return value  # a moment: the page shows it in the site's time (core.site_time)
    if isinstance(value, date):
        return value.isoformat()
    return value


HIDDEN_VALUE = "(not shown to your role)"


def record_label(record) -> str:
    """How a history record's row is named for people: the model's ``audit_label`` or its name."""
    model = record.instance_type
    label = getattr(model, "audit_label", None)
    return label(record) if label else capfirst(str(model._meta.verbose_name))


def previous_records(records) -> dict:
    """{history id: the record before it in its object's history} for the changes ("~") among
    ``records``, read in one query per history model: simple-history's ``prev_record`` reads
    one query per record (a page's audit trail would grow with it)."""
    objects: dict[type[Any], set] = {}  # simple-history's history models (untyped)
    for record in records:
        if record.history_type == "~":
            pk_name = record.instance_type._meta.pk.attname
            objects.setdefault(type(record), set()).add(getattr(record, pk_name))
    previous = {}
    for model, ids in objects.items():
        pk_name = model.instance_type._meta.pk.attname
        history = model._default_manager.filter(**{f"{pk_name}__in": ids})
        last: dict = {}  # object id -> (its newest record so far, the one before that date)
        for record in history.order_by(pk_name, "history_date", "pk"):
            key = getattr(record, pk_name)
            newest, before = last.get(key, (None, None))
            if newest is not None and newest.history_date < record.history_date:
                before = newest  # as ``prev_record``: the newest record strictly earlier
            previous[record.pk] = before
            last[key] = (record, before)
    return previous


def history_rows(records, *, hidden: Iterable[str] = ()) -> list[dict]:
    """History records as rows for people: when, who, what, reason, and each old → new value.

    The values of the ``hidden`` fields are masked (e.g. direct identifiers for the sponsor).
    """
    hidden = set(hidden)
    records = list(records)
    previous_of = previous_records(records)
    rows = []
    for record in records:
        changes = []
        previous = previous_of.get(record.pk)
        if previous is not None and record.history_type == "~":
            delta = record.diff_against(previous)
            for change in delta.changes:
                field = record.instance_type._meta.get_field(change.field)
                masked = change.field in hidden
                changes.append(
                    {
                        "field": capfirst(str(field.verbose_name)),
                        "old": HIDDEN_VALUE if masked else display_value(field, change.old),
                        "new": HIDDEN_VALUE if masked else display_value(field, change.new),
                    }
                )
        rows.append(
            {
                "record": record_label(record),
                "when": record.history_date,
                "who": record.history_user,
                "what": record.get_history_type_display(),
                "reason": record.history_change_reason or "",
                "changes": changes,
            }
        )
    return rows


@cache
def subject_models() -> tuple[type[models.Model], ...]:
    """The project's audited models that belong to a subject (they declare ``subject_lookup``).
    Read once: the models do not change while the process runs (every page asks)."""
    labels = project_app_labels()
    return tuple(
        model
        for model in apps.get_models()
        if model._meta.app_label in labels
        and hasattr(model, "subject_lookup")
        and hasattr(model, "history")
    )


def subject_history(model: type[Any], subject_pk) -> models.QuerySet:
    """The history records of ``model`` (one of ``subject_models()``: its ``subject_lookup``
    and simple-history's ``history``) that belong to the subject with ``subject_pk``."""
    history = model.history.all()
    lookup = model.subject_lookup
    if lookup == "pk":
        return history.filter(**{model._meta.pk.attname: subject_pk})
    first, _, rest = lookup.partition("__")
    if not rest:
        return history.filter(**{f"{first}_id": subject_pk})
    parent = model._meta.get_field(first).related_model
    parents = parent._base_manager.filter(**{f"{rest}_id": subject_pk}).values("pk")
    return history.filter(**{f"{first}_id__in": parents})


def subject_history_rows(
    subject, *, hidden: Iterable[str] = (), limit: int = 200, only: str = ""
) -> list[dict]:
    """The subject's audit trail across every record of it, newest first (at most ``limit``);
    ``only``: the records of one model ("app_label.model") alone."""
    rows = []
    for model in subject_models():
        if only and model._meta.label_lower != only:
            continue
        records = subject_history(model, subject.pk).select_related("history_user")
        rows += history_rows(records.order_by("-history_date")[:limit], hidden=hidden)
    rows.sort(key=lambda row: row["when"], reverse=True)
    return rows[:limit]
