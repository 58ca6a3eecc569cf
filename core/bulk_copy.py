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
    """Whether ``copy_with_history`` writes these records: integer keys from a sequence (or
    given), and a history model with simple-history's own fields only."""
    history = model.history.model
    tracked = {f.attname for f in history.tracked_fields}
    known = tracked | {"history_id", "history_user_id", *HISTORY_FIELDS}
    pk = model._meta.pk
    return (
        isinstance(pk, AutoFieldMixin | models.IntegerField)
        and (isinstance(pk, AutoFieldMixin) or all(o._is_pk_set() for o in objs))
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
    # As bulk_create: a default key, and the keys of the related records set on assignment
    # (an unsaved one refused), looking at the relations only.
    pk = model._meta.pk
    related = [f for f in fields if f.is_relation] + list(model._meta.private_fields)
    for obj in objs:
        if not isinstance(pk, AutoFieldMixin) and not obj._is_pk_set():
            obj.pk = pk.get_pk_value_on_save(obj)
        if related:
            obj._prepare_related_fields_for_save(operation_name="bulk_create", fields=related)
    with transaction.atomic(using=using, savepoint=False), connection.cursor() as cursor:
        _take_keys(cursor, model, [obj for obj in objs if not obj._is_pk_set()])
        rows = _rows(objs, fields, connection)
        with connection.wrap_database_errors:
            _copy(cursor, model._meta.db_table, [f.column for f in fields], rows)
        _history_insert(cursor, model, objs, user, reason)
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

    def prepared(value, prep=field.get_db_prep_save):
        return prep(value, connection)

    return prepared


def _rows(objs: list, fields: list, connection) -> list[list]:
    # The auto_now dates (``created``, ``updated``) set as ``save`` sets them: to the moment of
    # this write.
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            moment = field.pre_save(objs[0], True)
            for obj in objs:
                setattr(obj, field.attname, moment)
    names = [f.attname for f in fields]
    # A new record holds its values in its __dict__ (read there: no descriptor per value).
    stored, values = operator.itemgetter(*names), operator.attrgetter(*names)
    converters = [(i, c) for i, f in enumerate(fields) if (c := _converter(f, connection))]
    rows = []
    for obj in objs:
        try:
            found = stored(obj.__dict__)
        except KeyError:  # a deferred field: read through its descriptor
            found = values(obj)
        row = list(found) if len(fields) > 1 else [found]
        for i, convert in converters:
            row[i] = convert(row[i])
        rows.append(row)
    return rows


def _history_insert(cursor, model, objs: list, user, reason: str) -> None:
    """The '+' history records of ``objs``, as ``bulk_history_create`` makes them (each by
    ``obj._history_user`` or ``user``, with ``obj._change_reason`` or ``reason``, dated
    ``obj._history_date`` or now), written set-wise from the rows just copied: one
    INSERT ... SELECT, in the order of ``objs``. Keys and users go as one text each (a list of
    numbers is slow to send as an array)."""
    history = model.history.model
    tracked = [f.attname for f in history.tracked_fields]
    target = [history._meta.get_field(name).column for name in tracked]
    target += [history._meta.get_field(name).column for name in HISTORY_FIELDS]
    source = ", ".join(f't."{model._meta.get_field(name).column}"' for name in tracked)
    now = timezone.now()
    users, reasons, dates = [], [], []
    for obj in objs:
        if hasattr(obj, "_history_user"):
            who = obj._history_user
        else:
            who = user or history.get_default_history_user(obj)
        users.append("" if who is None else str(who.pk))
        reasons.append(get_change_reason_from_object(obj) or reason)
        dates.append(getattr(obj, "_history_date", None) or now)
    columns = ", ".join(f'"{c}"' for c in target)
    chosen = [_one_or_each(dates, "timestamptz"), _one_or_each(reasons, "text")]
    params = [value for _, value in chosen]
    params += [",".join(str(obj.pk) for obj in objs), ",".join(users)]
    cursor.execute(
        f'INSERT INTO "{history._meta.db_table}" ({columns}) '
        f"SELECT {source}, {chosen[0][0]}, {chosen[1][0]}, '+', h.user_id "
        "FROM unnest(string_to_array(%s, ',')::bigint[], string_to_array(%s, ',', '')::bigint[]) "
        "WITH ORDINALITY AS h(id, user_id, n) "
        f'JOIN "{model._meta.db_table}" t ON t."{model._meta.pk.column}" = h.id ORDER BY h.n',
        params,
    )


def _one_or_each(values: list, cast: str) -> tuple[str, Any]:
    """(SQL, parameter) of a history column: one value for every row, or the row's own."""
    if len(set(values)) == 1:
        return f"%s::{cast}", values[0]
    return f"(%s::{cast}[])[h.n::integer]", values


def _copy(cursor, table: str, columns: list[str], rows: list) -> None:
    names = ", ".join(f'"{c}"' for c in columns)
    with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row(row)
