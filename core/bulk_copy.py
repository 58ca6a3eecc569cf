"""New records and their '+' history records written with PostgreSQL's COPY.

``AuditedQuerySet.bulk_create_with_history`` writes through here on PostgreSQL: the same rows
Django's ``bulk_create`` and simple-history's ``bulk_history_create`` write (the values Django
would send, auto_now dates set, the keys of related records taken from them), without compiling
an INSERT of every value. The primary keys are taken from the table's sequence first, as INSERT
would take them (in order), so the records and their history rows can be written in one pass
each; the history rows keep simple-history's user, date and reason of each record.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from django.db import connections, models, transaction
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone
from simple_history.utils import get_change_reason_from_object

# Fields whose value Django sends to PostgreSQL unchanged (psycopg adapts it: COPY's text form
# takes what an INSERT parameter takes).
_AS_IS = (
    models.AutoField,
    models.BigAutoField,
    models.SmallAutoField,
    models.IntegerField,
    models.BigIntegerField,
    models.SmallIntegerField,
    models.PositiveIntegerField,
    models.PositiveBigIntegerField,
    models.PositiveSmallIntegerField,
    models.BooleanField,
    models.CharField,
    models.TextField,
    models.EmailField,
    models.SlugField,
    models.DateField,
    models.DecimalField,
)
HISTORY_FIELDS = ("history_date", "history_change_reason", "history_type", "history_user")


def can_copy(model: type[Any], objs: list) -> bool:
    """Whether ``copy_with_history`` writes these records: keys from a sequence (or given), and a
    history model with simple-history's own fields only."""
    history = model.history.model
    tracked = {f.attname for f in history.tracked_fields}
    known = tracked | {"history_id", "history_user_id", *HISTORY_FIELDS}
    return (
        (isinstance(model._meta.pk, AutoFieldMixin) or all(o._is_pk_set() for o in objs))
        and not any(f.generated for f in model._meta.concrete_fields)
        and all(f.attname in known for f in history._meta.concrete_fields)
    )


def copy_with_history(model: type[Any], objs: list, *, user, reason: str, using: str) -> list:
    """Insert ``objs`` (new records of ``model``) and one '+' history record each, by
    ``obj._history_user`` or ``user``, with ``obj._change_reason`` or ``reason``."""
    if not objs:
        return objs
    connection = connections[using]
    fields = list(model._meta.concrete_fields)
    for obj in objs:
        if not obj._is_pk_set():
            obj.pk = model._meta.pk.get_pk_value_on_save(obj)
        obj._prepare_related_fields_for_save(operation_name="bulk_create")
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        _take_keys(cursor, model, [obj for obj in objs if not obj._is_pk_set()])
        rows = _rows(objs, fields, connection)
        with connection.wrap_database_errors:
            _copy(cursor, model._meta.db_table, [f.column for f in fields], rows)
            history_columns, history_rows = _history_rows(model, objs, fields, rows, user, reason)
            _copy(cursor, model.history.model._meta.db_table, history_columns, history_rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = using
    return objs


def _take_keys(cursor, model, objs: list) -> None:
    """Give ``objs`` the next keys of the table's sequence, in order (as INSERT would)."""
    if not objs:
        return
    cursor.execute(
        "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s) ORDER BY 1",
        [model._meta.db_table, model._meta.pk.column, len(objs)],
    )
    for obj, (key,) in zip(objs, cursor.fetchall(), strict=True):
        obj.pk = key


def _converter(field: models.Field, connection) -> Callable[[Any], Any] | None:
    """How a value of ``field`` becomes what Django sends to the database (None: unchanged)."""
    if type(field) in _AS_IS:
        return None
    if isinstance(field, models.ForeignKey) and type(field.target_field) in _AS_IS:
        return None
    if type(field) is models.DateTimeField:

        def aware(value, prep=field.get_db_prep_save):
            # An aware moment goes as it is; a naive one as Django makes it (with a warning).
            if value is None or value.tzinfo is not None:
                return value
            return prep(value, connection)

        return aware
    return lambda value, prep=field.get_db_prep_save: prep(value, connection)


def _rows(objs: list, fields: list, connection) -> list[list]:
    # The auto_now dates (``created``, ``updated``) set as ``save`` sets them: to the moment of
    # this write.
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            moment = field.pre_save(objs[0], True)
            for obj in objs:
                setattr(obj, field.attname, moment)
    values = operator.attrgetter(*[f.attname for f in fields])
    converters = [(i, c) for i, f in enumerate(fields) if (c := _converter(f, connection))]
    rows = []
    for obj in objs:
        row = list(values(obj)) if len(fields) > 1 else [values(obj)]
        for i, convert in converters:
            row[i] = convert(row[i])
        rows.append(row)
    return rows


def _history_rows(model, objs: list, fields: list, rows: list, user, reason: str):
    """(columns, rows) of the '+' history records, as ``bulk_history_create`` makes them."""
    history = model.history.model
    position = {f.attname: i for i, f in enumerate(fields)}
    tracked = [position[f.attname] for f in history.tracked_fields]
    columns = [history._meta.get_field(f.attname).column for f in history.tracked_fields]
    columns += [history._meta.get_field(name).column for name in HISTORY_FIELDS]
    pick = operator.itemgetter(*tracked)
    now = timezone.now()  # the moment of this write, the date of its history records
    history_rows = []
    for obj, row in zip(objs, rows, strict=True):
        if hasattr(obj, "_history_user"):
            who = obj._history_user
        else:
            who = user or history.get_default_history_user(obj)
        values = list(pick(row)) if len(tracked) > 1 else [pick(row)]
        values += [
            getattr(obj, "_history_date", None) or now,
            get_change_reason_from_object(obj) or reason,
            "+",
            who.pk if who is not None else None,
        ]
        history_rows.append(values)
    return columns, history_rows


def _copy(cursor, table: str, columns: list[str], rows: list) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
