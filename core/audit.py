"""Audit trail helpers shared by every app.

Every model that holds trial data or configuration has ``HistoricalRecords()`` and uses
``AuditedManager``. The rules kept here:

* ``audited_save``/``audited_delete`` are how services write: they attach the user and the reason,
  and refuse a change or deletion of an existing record without a reason. A write to a record of
  a subject tells the apps that follow subjects' data, after the transaction commits
  (``core.registry.notify_subject_change``: the edit checks run for that subject).
* A guard on simple-history's ``pre_create_historical_record`` signal refuses any history record
  of a change (``~``) or deletion (``-``) that carries no reason, whatever path made it.
* ``AuditedQuerySet`` refuses ``update()``, ``delete()``, ``bulk_create()`` and ``bulk_update()``,
  which simple-history cannot see; ``bulk_create_with_history`` is the audited bulk path.
* On PostgreSQL a trigger makes history tables (and other append-only logs) refuse UPDATE and
  DELETE, installed after every ``migrate``.
* ``subject_history_rows(subject)`` is a subject's whole audit trail: every history record of
  every model that declares ``subject_lookup`` (how to reach the subject, as ``site_lookup``
  reaches the site: ``"pk"`` for the subject model, ``"subject"`` for a CRF,
  ``"adverse_event__subject"`` for a child record). A CRF added later joins it by declaring it.
  A model may name each of its records for people with ``audit_label(historical_record)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import contextmanager
from datetime import date, datetime

from django.apps import apps
from django.db import connection, models
from django.utils.text import capfirst
from simple_history.models import HistoricalChanges

from .errors import BulkChangeRefused, ReasonRequired
from .registry import notify_subject_change, project_app_labels


def clean_reason(reason: str | None) -> str:
    return (reason or "").strip()


@contextmanager
def attached_reason(instance: models.Model, user, reason: str):
    """Attach who and why for simple-history for one write only: a reason never outlives it."""
    instance._history_user = user
    instance._change_reason = reason
    try:
        yield
    finally:
        del instance._history_user
        del instance._change_reason


def audited_save(
    instance: models.Model,
    *,
    user,
    reason: str | None = None,
    validate_only: Iterable[str] | None = None,
    **save_kwargs,
):
    """Validate and save ``instance``, recording ``user`` and ``reason`` in its history.

    A new record may be saved without a reason; a change to an existing one may not.
    ``validate_only`` names the fields a service changed (and checked itself): only they are
    validated, sparing full_clean's lookups of references and uniqueness on a hot path.
    """
    reason = clean_reason(reason)
    if not instance._state.adding and not reason:
        raise ReasonRequired()
    if validate_only is None:
        instance.full_clean()
    else:
        keep = set(validate_only)
        instance.clean_fields(exclude=[f.name for f in instance._meta.fields if f.name not in keep])
    with attached_reason(instance, user, reason):
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
    with attached_reason(instance, user, reason):
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

    def bulk_create_with_history(self, objs: Iterable[models.Model], *, user, reason: str = ""):
        """Insert many new records and one '+' history record for each, in one go."""
        objs = list(objs)
        created = super().bulk_create(objs)
        self.model.history.bulk_history_create(
            created, default_user=user, default_change_reason=clean_reason(reason)
        )
        for subject_id in {subject_id_of(obj) for obj in created}:
            notify_subject_change(subject_id)
        return created


AuditedManager = models.Manager.from_queryset(AuditedQuerySet)


# --- PostgreSQL: history tables are append-only ----------------------------------------------

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION edc_refuse_history_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit records in % are append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
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


def install_append_only_triggers(using: str = "default", **kwargs) -> int:
    """post_migrate receiver: on PostgreSQL, refuse UPDATE/DELETE on every append-only table."""
    from django.db import connections

    conn = connections[using] if using else connection
    if conn.vendor != "postgresql":
        return 0
    tables = set(conn.introspection.table_names())
    count = 0
    with conn.cursor() as cursor:
        cursor.execute(APPEND_ONLY_FUNCTION)
        for model in append_only_models():
            table = model._meta.db_table
            if table not in tables:
                continue
            cursor.execute(
                f'CREATE OR REPLACE TRIGGER edc_append_only BEFORE UPDATE OR DELETE ON "{table}" '
                "FOR EACH ROW EXECUTE FUNCTION edc_refuse_history_change()"
            )
            count += 1
    return count


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


def history_rows(records, *, hidden: Iterable[str] = ()) -> list[dict]:
    """History records as rows for people: when, who, what, reason, and each old → new value.

    The values of the ``hidden`` fields are masked (e.g. direct identifiers for the sponsor).
    """
    hidden = set(hidden)
    rows = []
    for record in records:
        changes = []
        previous = record.prev_record
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


def subject_models() -> list[type[models.Model]]:
    """The project's audited models that belong to a subject (they declare ``subject_lookup``)."""
    labels = project_app_labels()
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in labels
        and hasattr(model, "subject_lookup")
        and hasattr(model, "history")
    ]


def subject_history(model: type[models.Model], subject_pk) -> models.QuerySet:
    """The history records of ``model`` that belong to the subject with ``subject_pk``."""
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
