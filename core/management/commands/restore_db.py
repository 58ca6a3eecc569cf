"""``restore_db --from FILE [--into DATABASE]``: restore a ``backup_db`` file into an empty
database (a new one: a restore never overwrites data).

``pg_restore`` runs in one transaction (all or nothing) and stops at the first error. Objects
are owned by the role running it (the owner role that runs migrations), whatever role owned them
where the backup was made, and privileges are not restored: run ``create_app_role`` against the
restored database before the servers use it. The triggers that make the audit trail append-only
come back with the data (they are part of the dump).
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError

from .backup_db import pg_environment, postgresql_tool, run_tool


def table_count(env: dict) -> int:
    """How many tables the target database already has (outside PostgreSQL's own schemas)."""
    params = {
        "host": env.get("PGHOST"),
        "port": env.get("PGPORT"),
        "user": env.get("PGUSER"),
        "password": env.get("PGPASSWORD"),
        "dbname": env["PGDATABASE"],
    }
    try:
        with psycopg.connect(**{k: v for k, v in params.items() if v}) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_tables "
                "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
            ).fetchone()
            return row[0] if row is not None else 0
    except psycopg.OperationalError as exc:
        raise CommandError(
            f"Cannot connect to database {env['PGDATABASE']}: create it first "
            f"(createdb {env['PGDATABASE']}). {str(exc).strip().splitlines()[-1]}"
        ) from exc


class Command(BaseCommand):
    help = "Restore a backup_db file into an empty database (the configured one, or --into)."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, metavar="FILE")
        parser.add_argument(
            "--into",
            metavar="DATABASE",
            help="name of an empty database on the same server (default: the configured one)",
        )
        parser.add_argument("--database", default="default", help="database alias (default)")

    def handle(self, *args, source, into, database, **options):
        pg_restore, settings_dict = postgresql_tool("pg_restore", database)
        path = Path(source)
        if not path.is_file():
            raise CommandError(f"{path} is not a file.")
        env = pg_environment(settings_dict, into)
        existing = table_count(env)
        if existing:
            raise CommandError(
                f"Database {env['PGDATABASE']} already has {existing} tables: restore into a new, "
                "empty database (a restore never overwrites data)."
            )
        run_tool(
            [
                pg_restore,
                "--single-transaction",
                "--exit-on-error",
                "--no-owner",
                "--no-acl",
                "--no-password",
                f"--dbname={env['PGDATABASE']}",
                str(path),
            ],
            env,
            f"pg_restore of {path} into {env['PGDATABASE']}",
        )
        self.stdout.write(
            f"Restored {path} into database {env['PGDATABASE']} ({table_count(env)} tables). "
            "Next: manage.py create_app_role against it, then point the servers at it."
        )
