"""``create_app_role``: the PostgreSQL role the application connects as, with no more privileges
than it needs. Run it as the owner role after every ``migrate`` (idempotent).

The role may only SELECT and INSERT on history and the security log, never DELETE allocations,
and owns nothing, so a compromised server cannot rewrite the audit trail. Tables a later
migration creates get SELECT and INSERT only until the command runs again: they fail safe.
"""

from __future__ import annotations

import os
import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction

from core.audit import protected_tables

ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class Command(BaseCommand):
    help = (
        "Create or update the application's PostgreSQL role: INSERT and SELECT only on history "
        "and security-log tables, no TRUNCATE or ALTER anywhere. Run as the owner, after migrate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--role", default="edc_app", help="the role's name (edc_app)")
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="set the role's password from this environment variable (never on the command "
            "line, where other users see it); without it the password is left as it is",
        )
        parser.add_argument("--database", default="default", help="database alias (default)")

    def handle(self, *args, role, password_env, database, **options):
        conn = connections[database]
        if conn.vendor != "postgresql":
            raise CommandError(
                f"create_app_role needs PostgreSQL; the '{database}' database is {conn.vendor}."
            )
        if not ROLE_NAME.match(role):
            raise CommandError(
                f"'{role}' is not a plain role name: use lower-case letters, digits and _."
            )
        password = None
        if password_env:
            password = os.environ.get(password_env)
            if not password:
                raise CommandError(f"The environment variable {password_env} is unset or empty.")
        with transaction.atomic(using=database), conn.cursor() as cursor:
            owner = self.ensure_role(cursor, role, password)
            counts = self.grant(cursor, conn, role)
        self.stdout.write(
            f"Role {role}: SELECT, INSERT on {counts['append_only']} append-only tables (history, "
            f"security log); no DELETE on {counts['never_deleted']} never-deleted tables; "
            f"SELECT, INSERT, UPDATE, DELETE on {counts['other']} other tables; SELECT on "
            "django_migrations; no TRUNCATE, "
            f"ALTER or DROP anywhere. Connect the servers and workers as {role}; run migrate as "
            f"{owner}, then this command again."
        )

    def ensure_role(self, cursor, role: str, password: str | None) -> str:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
        if role == owner:
            raise CommandError(
                f"{role} is the role running this command (the owner that runs migrations): "
                "the application role must be another one."
            )
        cursor.execute(
            "SELECT rolsuper OR rolbypassrls OR rolcreaterole OR rolcreatedb, "
            "pg_has_role(oid, %s, 'USAGE') FROM pg_roles WHERE rolname = %s",
            [owner, role],
        )
        found = cursor.fetchone()
        quoted = f'"{role}"'
        if found is None:
            cursor.execute(
                f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
                "NOBYPASSRLS NOINHERIT"
            )
        elif found[0]:
            raise CommandError(
                f"{role} is a superuser or may bypass row security, create roles or databases: "
                "privileges cannot restrict it. Use a plain role."
            )
        elif found[1]:
            raise CommandError(
                f"{role} is a member of {owner}: it would have the owner's privileges."
            )
        if password is not None:
            cursor.execute(f"ALTER ROLE {quoted} PASSWORD %s", [password])
        cursor.execute("SELECT count(*) FROM pg_tables WHERE tableowner = %s", [role])
        if cursor.fetchone()[0]:
            raise CommandError(
                f"{role} owns tables: an owner may ALTER, TRUNCATE or DROP them. "
                f"Run REASSIGN OWNED BY {role} TO {owner} first."
            )
        return owner

    def grant(self, cursor, conn, role: str) -> dict[str, int]:
        quoted = f'"{role}"'
        cursor.execute("SELECT current_schema(), current_database()")
        schema, database = cursor.fetchone()
        schema_q, database_q = f'"{schema}"', f'"{database}"'
        cursor.execute(f"GRANT CONNECT ON DATABASE {database_q} TO {quoted}")
        cursor.execute(f"GRANT USAGE ON SCHEMA {schema_q} TO {quoted}")
        cursor.execute(f"REVOKE CREATE ON SCHEMA {schema_q} FROM {quoted}")
        cursor.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_q} FROM {quoted}")
        cursor.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_q} TO {quoted}"
        )
        cursor.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_q} TO {quoted}")
        existing = set(conn.introspection.table_names(cursor))
        counts = {"append_only": 0, "never_deleted": 0}
        for table, rules in sorted(protected_tables().items()):
            if table not in existing:
                continue
            if "append_only" in rules:
                cursor.execute(f'REVOKE UPDATE, DELETE ON "{table}" FROM {quoted}')
                counts["append_only"] += 1
            elif "never_deleted" in rules:
                cursor.execute(f'REVOKE DELETE ON "{table}" FROM {quoted}')
                counts["never_deleted"] += 1
        if "django_migrations" in existing:
            cursor.execute(f"REVOKE INSERT, UPDATE, DELETE ON django_migrations FROM {quoted}")
        # Tables and sequences the owner creates later (a migration): read and append only,
        # until this command runs again and grants what the table's rules allow.
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} GRANT SELECT, INSERT ON TABLES "
            f"TO {quoted}"
        )
        cursor.execute(
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} GRANT USAGE, SELECT ON SEQUENCES "
            f"TO {quoted}"
        )
        counts["other"] = (
            len(existing)
            - counts["append_only"]
            - counts["never_deleted"]
            - ("django_migrations" in existing)
        )
        return counts
