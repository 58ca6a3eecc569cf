"""A big export query read ahead by a thread on a database connection of its own.

The database building the ODM's text and the stream's Python writing it would otherwise wait
for each other; read ahead, split between a few backends, they run in parallel. One such query
per export (``largest``), only outside a transaction or inside the export's own snapshot
(``usable``), and one moment for the whole file (``one_snapshot``: the threads import its
snapshot). A thread's error is raised in the reader; a reader that stops stops the thread.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Model
from psycopg import sql as pgsql

AHEAD = 4  # chunks read ahead per query
_END = object()


_snapshots = threading.local()  # alias -> the snapshot this thread's export reads in


def _snapshot(alias: str) -> str | None:
    return getattr(_snapshots, "ids", {}).get(alias)


def _outside_transaction(alias: str) -> bool:
    connection = connections[alias]
    return connection.vendor == "postgresql" and not connection.in_atomic_block


def usable(alias: str) -> bool:
    return settings.EXPORT_QUERY_THREADS > 1 and (
        _outside_transaction(alias) or _snapshot(alias) is not None
    )


@contextlib.contextmanager
def one_snapshot(alias: str) -> Iterator[None]:
    """Every query of an export as of one moment: a transaction (on PostgreSQL read-only and
    REPEATABLE READ, its snapshot exported for the reader threads), unless the caller already
    runs in one (whose data a thread's connection could not see: no threads then)."""
    connection = connections[alias]
    if connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using=alias):
        if connection.vendor != "postgresql":  # SQLite: a transaction is one state already
            yield
            return
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
        if not hasattr(_snapshots, "ids"):
            _snapshots.ids = {}
        ids = _snapshots.ids
        ids[alias] = snapshot
        try:
            yield
        finally:
            ids.pop(alias, None)


def threads() -> int:
    return max(1, settings.EXPORT_QUERY_THREADS)


def largest(models: list[type[Model]]) -> type[Model] | None:
    """The model with the most rows by PostgreSQL's estimate (``pg_class.reltuples``, kept by
    ANALYZE and autovacuum: one catalog query); the one whose query gets the threads."""
    if not models or connections[models[0]._default_manager.db].vendor != "postgresql":
        return None
    tables = {model._meta.db_table: model for model in models}
    with connections[models[0]._default_manager.db].cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' AND relname = ANY(%s)",
            [list(tables)],
        )
        found = dict(cursor.fetchall())
    return max(models, key=lambda model: (found.get(model._meta.db_table, 0), model._meta.label))


class _Reader(threading.Thread):
    def __init__(self, alias: str, query: str, params: tuple, chunk: int):
        super().__init__(daemon=True, name="export-query")
        self.alias, self.query, self.params, self.chunk = alias, query, params, chunk
        self.snapshot = _snapshot(alias)  # the export's, taken in the caller's thread
        self.rows: queue.Queue = queue.Queue(maxsize=AHEAD)
        self.stopped = threading.Event()
        self.raw = None  # the psycopg connection, to cancel a running query

    def run(self) -> None:
        wrapper = connections.create_connection(self.alias)
        try:
            wrapper.ensure_connection()
            self.raw = wrapper.connection
            with self.raw.transaction():
                if self.snapshot is not None:
                    self.raw.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    imported = pgsql.Literal(self.snapshot)
                    self.raw.execute(pgsql.SQL("SET TRANSACTION SNAPSHOT {}").format(imported))
                self.raw.execute("SET LOCAL jit = off")  # see records.without_jit
                with self.raw.cursor(name="export_query") as cursor:
                    cursor.execute(self.query, self.params)
                    while not self.stopped.is_set():
                        rows = cursor.fetchmany(self.chunk)
                        if not rows or not self._put(rows):
                            break
            self._put(_END)
        except BaseException as exc:  # handed to the reader, raised there
            if not self.stopped.is_set():
                self._put(exc)
        finally:
            wrapper.close()

    def _put(self, item) -> bool:
        while not self.stopped.is_set():
            try:
                self.rows.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def stop(self) -> None:
        self.stopped.set()
        raw = self.raw
        if raw is not None and self.is_alive():
            # A query still running stops now (thread-safe in libpq); a connection closing
            # meanwhile has nothing left to stop.
            with contextlib.suppress(Exception):
                raw.cancel()
        self.join(timeout=10)


def rows_ahead(alias: str, sql: str, params: tuple, *, chunk: int) -> Iterator[tuple]:
    """The rows of ``sql``, read ahead by a thread on its own connection to ``alias``."""
    reader = _Reader(alias, sql, tuple(params), chunk)
    reader.start()
    try:
        while True:
            item = reader.rows.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        reader.stop()
