"""Backup and restore (issue 12): ``backup_db`` dumps a populated study, ``restore_db`` puts it
into a fresh database, and the restored database has every row of every table (subjects, AEs,
queries, signatures, every history row, the security log) and its audit triggers still active."""

from __future__ import annotations

import os
import stat
import subprocess
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.models import AuthEvent
from adverse_events.models import AdverseEvent
from eligibility.models import EligibilitySignature
from queries.models import DataQuery
from randomization.models import Allocation
from subjects.models import Subject

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def table_digests(cursor) -> dict[str, tuple[int, str]]:
    """Every table of the public schema: its row count and an MD5 of all its rows' contents."""
    cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
    digests = {}
    for (table,) in cursor.fetchall():
        cursor.execute(
            f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
            f'FROM "{table}" t'
        )
        digests[table] = tuple(cursor.fetchone())
    return digests


def server(dbname: str) -> psycopg.Connection:
    settings = connection.settings_dict
    params = {
        "host": settings["HOST"],
        "port": settings["PORT"],
        "user": settings["USER"],
        "password": settings["PASSWORD"],
        "dbname": dbname,
    }
    return psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True)


@pytest.fixture
def scratch_database():
    name = f"edc_d_restore_{os.getpid()}"
    with server("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with server("postgres") as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_restored_backup_has_every_record_and_the_audit_triggers(
    tmp_path, settings, scratch_database
):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--subjects", "12", stdout=StringIO())  # every stage of the trial
    for model in (Subject, AdverseEvent, DataQuery, EligibilitySignature, Allocation, AuthEvent):
        assert model.objects.exists(), model._meta.label  # a study with everything in it
        if hasattr(model, "history"):
            assert model.history.exists(), model._meta.label
    with connection.cursor() as cursor:
        before = table_digests(cursor)
    backup = tmp_path / "edc.dump"

    out = StringIO()
    call_command("backup_db", "--to", str(backup), stdout=out)
    assert f"to {backup}" in out.getvalue() and backup.stat().st_size > 0
    call_command("restore_db", "--from", str(backup), "--into", scratch_database, stdout=out)
    assert f"into database {scratch_database}" in out.getvalue()

    with server(scratch_database) as restored, restored.cursor() as cursor:
        assert table_digests(cursor) == before  # every row of every table, history included
        history = Subject.history.model._meta.db_table
        allocations = Allocation._meta.db_table
        for sql, refusal in (
            (f"UPDATE \"{history}\" SET history_change_reason = 'x'", "append-only"),
            (f'DELETE FROM "{history}"', "append-only"),
            (f'TRUNCATE "{history}"', "TRUNCATE refused"),
            (f"UPDATE \"{AuthEvent._meta.db_table}\" SET username = 'x'", "append-only"),
            (f'DELETE FROM "{allocations}"', "DELETE refused"),
            (f"UPDATE \"{allocations}\" SET arm = 'C'", "UPDATE refused"),
        ):
            with pytest.raises(psycopg.Error, match=refusal):
                cursor.execute(sql)
        assert table_digests(cursor) == before

    # A restore never overwrites: the database now has tables.
    with pytest.raises(CommandError, match="already has .* tables"):
        call_command("restore_db", "--from", str(backup), "--into", scratch_database)


@pytest.fixture
def permissive_umask():
    """A umask that lets every file be world-readable and writable (0666), put back after."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_backup_is_readable_by_its_owner_alone_whatever_the_umask(
    tmp_path, permissive_umask, monkeypatch
):
    """The dump holds token keys, password hashes, initials and dates of birth: 0600, from the
    moment pg_dump starts writing (not chmod-ed afterwards), an overwritten backup too."""
    backup = tmp_path / "edc.dump"
    partial = tmp_path / "edc.dump.partial"
    modes_while_dumping = []
    run = subprocess.run

    def spy(command, **kwargs):
        modes_while_dumping.append(mode(partial) if partial.exists() else None)
        return run(command, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    call_command("backup_db", "--to", str(backup), stdout=StringIO())
    assert mode(backup) == 0o600 and backup.stat().st_size > 0
    assert modes_while_dumping == [0o600]  # before its first byte
    assert not partial.exists()

    backup.chmod(0o644)  # an older, world-readable backup, overwritten
    partial.write_bytes(b"left over by an interrupted run")
    call_command("backup_db", "--to", str(backup), "--force", stdout=StringIO())
    assert mode(backup) == 0o600 and modes_while_dumping == [0o600, 0o600]
    assert not partial.exists()


def test_backup_and_restore_refuse_with_a_sentence(tmp_path, scratch_database):
    existing = tmp_path / "exists.dump"
    existing.write_bytes(b"x")
    with pytest.raises(CommandError, match="exists: choose a new file or pass --force"):
        call_command("backup_db", "--to", str(existing))
    with pytest.raises(CommandError, match="does not exist"):
        call_command("backup_db", "--to", str(tmp_path / "no" / "such.dump"))
    with pytest.raises(CommandError, match="is not a file"):
        call_command("restore_db", "--from", str(tmp_path / "missing.dump"))
    with pytest.raises(CommandError, match="pg_restore of .* failed"):
        call_command("restore_db", "--from", str(existing), "--into", scratch_database)
    with pytest.raises(CommandError, match="Cannot connect to database edc_d_no_such_db"):
        call_command("restore_db", "--from", str(existing), "--into", "edc_d_no_such_db")
