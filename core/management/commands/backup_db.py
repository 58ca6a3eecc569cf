"""``backup_db --to FILE``: a complete PostgreSQL backup (``pg_dump``, custom format), history,
security log and audit triggers included; ``restore_db`` puts it back.

The file holds token keys, password hashes and direct identifiers: it is created 0600 before
pg_dump writes a byte, whatever the umask, and never exists with looser permissions. The
password goes in the environment, never on a command line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connections


def pg_environment(settings_dict: dict, dbname: str | None = None) -> dict[str, str]:
    """The libpq environment of a database's settings (PGHOST, PGPORT, PGUSER, PGPASSWORD,
    PGDATABASE), for pg_dump and pg_restore."""
    env = dict(os.environ)
    for key, variable in (
        ("HOST", "PGHOST"),
        ("PORT", "PGPORT"),
        ("USER", "PGUSER"),
        ("PASSWORD", "PGPASSWORD"),
    ):
        if settings_dict.get(key):
            env[variable] = str(settings_dict[key])
    env["PGDATABASE"] = dbname or settings_dict["NAME"]
    return env


def postgresql_tool(name: str, database: str) -> tuple[str, dict]:
    conn = connections[database]
    if conn.vendor != "postgresql":
        raise CommandError(
            f"{name} works on PostgreSQL; the '{database}' database is {conn.vendor} "
            "(for SQLite, copy the database file while no server runs)."
        )
    tool = shutil.which(name)
    if tool is None:
        raise CommandError(
            f"{name} is not installed (Debian: apt-get install postgresql-client): "
            "install the client of the server's major version."
        )
    return tool, conn.settings_dict


def run_tool(command: list[str], env: dict, what: str, *, stdout=None) -> None:
    """Run ``command``; a failure is a ``CommandError`` with the tool's last line. ``stdout``:
    an open file for the tool's output (else it is captured with its errors)."""
    result = subprocess.run(
        command,
        env=env,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()
        raise CommandError(f"{what} failed: {detail[-1] if detail else 'no output'}")


PRIVATE_MODE = 0o600


def private_file(path: Path):
    """A new, empty ``path`` open for writing, readable by its owner alone (0600) from its
    creation: opened with that mode (and set again on the descriptor, in case the umask took
    the owner's bits too), never a file that is chmod-ed once written. A leftover of an
    interrupted run is replaced; a symlink in its place is not followed."""
    path.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, PRIVATE_MODE)
    try:
        os.fchmod(fd, PRIVATE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


class Command(BaseCommand):
    help = "Back up the whole database with pg_dump (custom format) to FILE."

    def add_arguments(self, parser):
        parser.add_argument("--to", required=True, metavar="FILE", help="the backup file")
        parser.add_argument("--database", default="default", help="database alias (default)")
        parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    def handle(self, *args, to, database, force, **options):
        pg_dump, settings_dict = postgresql_tool("pg_dump", database)
        target = Path(to)
        if target.exists() and not force:
            raise CommandError(f"{target} exists: choose a new file or pass --force.")
        if not target.parent.is_dir():
            raise CommandError(f"The folder {target.parent} does not exist.")
        env = pg_environment(settings_dict)
        partial = target.with_name(target.name + ".partial")
        try:
            try:
                opened = private_file(partial)
            except OSError as exc:
                raise CommandError(f"Cannot write {partial}: {exc.strerror}.") from exc
            with opened as out:
                run_tool(
                    [pg_dump, "--format=custom", "--no-password"],
                    env,
                    f"pg_dump of {env['PGDATABASE']}",
                    stdout=out,
                )
                out.flush()
                os.fsync(out.fileno())  # on disk before it takes the backup's name
            partial.replace(target)  # a finished file or none: never half a backup under FILE
        finally:
            partial.unlink(missing_ok=True)
        self.stdout.write(
            f"Backed up database {env['PGDATABASE']} to {target} ({target.stat().st_size:,} "
            "bytes). Restore it with: manage.py restore_db --from FILE [--into DATABASE]."
        )
