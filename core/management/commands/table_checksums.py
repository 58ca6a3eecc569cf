"""``table_checksums``: every table's row count and an MD5 of its rows, one line per table.

Run it before and after an upgrade and compare (``--compare before.txt``): a migration that
recreated a table, or dropped and re-added a column, changes the figures of that table, history
tables included. The rows are hashed as PostgreSQL writes them as text, in that text's order.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections


def table_checksums(using: str = DEFAULT_DB_ALIAS) -> dict[str, tuple[int, str]]:
    """{table: (rows, md5 of the rows as text, one per line, sorted)} of every table."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise CommandError("table_checksums needs PostgreSQL (row-as-text hashing).")
    found = {}
    with connection.cursor() as cursor:
        for table in sorted(connection.introspection.table_names(cursor)):
            name = connection.ops.quote_name(table)
            cursor.execute(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                f" FROM {name} AS t"
            )
            found[table] = tuple(cursor.fetchone())
    return found


def as_lines(checksums: dict[str, tuple[int, str]]) -> list[str]:
    return [f"{table}\t{rows}\t{md5}" for table, (rows, md5) in checksums.items()]


def differences(before: list[str], after: list[str]) -> list[str]:
    """The tables whose figures differ: "table: rows md5 -> rows md5" ("absent" when missing)."""
    old = dict(line.replace("\t", " ").split(" ", 1) for line in before)
    new = dict(line.replace("\t", " ").split(" ", 1) for line in after)
    return [
        f"{table}: {old.get(table, 'absent')} -> {new.get(table, 'absent')}"
        for table in sorted(old.keys() | new.keys())
        if old.get(table) != new.get(table)
    ]


class Command(BaseCommand):
    help = "Print every table's row count and MD5 of its rows; --compare a previous output."

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument(
            "--compare",
            metavar="FILE",
            help="an earlier output: print the tables that differ, exit 1 if any does "
            "(django_migrations apart)",
        )

    def handle(self, *args, **options):
        lines = as_lines(table_checksums(options["database"]))
        if not options["compare"]:
            self.stdout.write("\n".join(lines))
            return
        before = Path(options["compare"]).read_text().splitlines()
        changed = [d for d in differences(before, lines) if not d.startswith("django_migrations:")]
        self.stdout.write("\n".join(changed) or f"{len(lines)} tables: every one unchanged.")
        if changed:
            raise CommandError(f"{len(changed)} tables differ.")
