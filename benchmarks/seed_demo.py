"""Benchmark: ``seed_demo``'s bulk path on PostgreSQL, beside PostgreSQL's COPY of the same rows.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc \\
        .venv/bin/python benchmarks/seed_demo.py [--subjects 10000] [--runs 1] [--keep-db]

It creates a throwaway database (``<DATABASE_URL's name>_seed_bench``; dropped at the end unless
``--keep-db``), migrates it, keeps an empty copy of it (``..._seed_floor``: the same schema, its
indexes, keys and triggers) and runs ``manage.py seed_demo --subjects N`` (from 1,000 subjects:
the bulk path), printing the time of each seeder step and the total. ``--runs`` seeds again into
a fresh database that many times; the fastest run counts.

Then the floor: every row the seed wrote (each table's rows beyond those ``migrate`` left, the
history tables included) is read out with ``COPY ... TO STDOUT`` and written with
``COPY ... FROM STDIN`` into a fresh copy of the empty schema, in one transaction (its deferred
foreign-key checks included), the fastest of ``--floor-runs`` (3). The seed's rows per second
over the floor's is the ratio.

Targets (10,000 subjects, 2 cores): the seed at least 0.2x COPY's rows per second, and under
300 s. Exit status 1 when one is missed.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from urllib.parse import urlparse

import psycopg
from pgbench_db import bench_database, recreate, setup_django

TARGET_RATIO, TARGET_SECONDS = 0.2, 300.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1, help="seeds (each on a fresh database)")
    parser.add_argument("--floor-runs", type=int, default=3, help="COPY runs (the fastest)")
    parser.add_argument("--keep-db", action="store_true", help="keep the seeded database")
    args = parser.parse_args()
    if args.subjects < 1 or args.runs < 1 or args.floor_runs < 1:
        parser.error("--subjects, --runs and --floor-runs must be at least 1")
    return args


def row_counts(url: str) -> dict[str, tuple[int, str | None, int | None]]:
    """{table: (rows, its integer primary key column or None, the largest key)} of every table."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT c.relname, a.attname FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
            "LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary AND i.indnatts = 1 "
            "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0] "
            "AND a.atttypid IN ('int4'::regtype, 'int8'::regtype) "
            "WHERE c.relkind = 'r' ORDER BY 1"
        ).fetchall()
        counts = {}
        for table, pk in tables:
            top = f'max("{pk}")' if pk else "NULL"
            n, largest = conn.execute(f'SELECT count(*), {top} FROM "{table}"').fetchone()
            counts[table] = (n, pk, largest)
        return counts


def written(before: dict, after: dict) -> dict[str, tuple[int, str]]:
    """{table: (rows the seed wrote, the SELECT of those rows)}: each table's rows beyond those
    it had before (by its primary key)."""
    found = {}
    for table, (rows, pk, _) in after.items():
        had, _, largest = before.get(table, (0, None, None))
        if rows <= had:
            continue
        query = f'SELECT * FROM "{table}"'
        if had:
            if pk is None:
                sys.exit(f"{table} had rows before the seed and has no integer primary key.")
            query += f' WHERE "{pk}" > {largest}'
        found[table] = (rows - had, query)
    return found


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) a PostgreSQL backend on this machine has used so far; None
    when it cannot be read (a server elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_between(before: tuple, after: tuple) -> float | None:
    """CPU seconds of this process and the backend between two (own, server) readings."""
    if before[1] is None or after[1] is None:
        return None
    return after[0] - before[0] + after[1] - before[1]


def seed(args, admin_url: str, bench_url: str, floor_template: str) -> tuple:
    """(seconds, CPU seconds, steps, {table: rows written}) of the fastest of ``args.runs``
    seeds; the database holds the last one."""
    from django.core.management import call_command
    from django.db import connection, connections

    from core.management.commands.seed_demo import Command

    best = None
    for run in range(args.runs):
        if run:
            connections.close_all()
            _database_from(admin_url, bench_url, floor_template)
        before = row_counts(bench_url)
        command = Command()
        connection.ensure_connection()
        pid = connection.connection.info.backend_pid
        t0, cpu0 = time.perf_counter(), (own_cpu(), server_cpu(pid))
        call_command(command, "--subjects", str(args.subjects))
        seconds, cpu = time.perf_counter() - t0, cpu_between(cpu0, (own_cpu(), server_cpu(pid)))
        connections.close_all()
        rows = written(before, row_counts(bench_url))
        print(f"Run {run + 1}: {seconds:.1f} s, {sum(n for n, _ in rows.values())} rows")
        if best is None or seconds < best[0]:
            best = (seconds, cpu, command.ctx.steps, rows)
    assert best is not None
    return best


def _database_from(admin_url: str, url: str, template: str) -> None:
    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def copy_floor(args, admin_url: str, bench_url: str, floor_template: str, rows: dict) -> tuple:
    """(seconds, CPU seconds) of the fastest COPY of ``rows`` into a fresh copy of the empty
    schema."""
    buffers = {}
    with psycopg.connect(bench_url) as conn, conn.cursor() as cursor:
        for table, (_, query) in rows.items():
            out = io.BytesIO()
            with cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
                for block in copy:
                    out.write(block)
            buffers[table] = out.getvalue()
    floor_url = bench_url.replace(urlparse(bench_url).path, f"/{floor_template}_run")
    times = []
    for _ in range(args.floor_runs):
        _database_from(admin_url, floor_url, floor_template)
        with psycopg.connect(floor_url) as conn, conn.cursor() as cursor:
            pid = conn.info.backend_pid
            t0, cpu0 = time.perf_counter(), (own_cpu(), server_cpu(pid))
            for table, data in buffers.items():
                with cursor.copy(f'COPY "{table}" FROM STDIN (FORMAT binary)') as copy:
                    copy.write(data)
            conn.commit()
            cpu = cpu_between(cpu0, (own_cpu(), server_cpu(pid)))
            times.append((time.perf_counter() - t0, cpu))
    recreate(admin_url, floor_url, drop_only=True)
    return min(times)


def report(args, seed_run: tuple, floor: tuple) -> int:
    seconds, cpu, steps, rows = seed_run
    total = sum(n for n, _ in rows.values())
    print(f"\nSeed of {args.subjects} subjects, by step (fastest run of {args.runs}):")
    for label, pass_name, took in steps:
        print(f"  {label + '.' + pass_name:34} {took:7.1f} s")
    print(f"  {'seed_demo (the command)':34} {seconds:7.1f} s")
    history = sum(n for table, (n, _) in rows.items() if "_historical" in table)
    print(f"\nRows written: {total} in {len(rows)} tables ({history} history rows); the largest:")
    for table, (n, _) in sorted(rows.items(), key=lambda item: -item[1][0])[:8]:
        print(f"  {table:40} {n:9}")
    ratio = floor[0] / seconds  # rows/s of the seed over rows/s of COPY, the same rows
    print("\n                 seconds     rows/s   CPU s (client + server)   target")
    for name, (wall, used) in (("seed_demo", (seconds, cpu)), ("COPY (floor)", floor)):
        spent = f"{used:8.1f}" if used is not None else "     n/a"
        print(f"  {name:13} {wall:8.1f} {total / wall:10.0f}   {spent}")
    print(f"  ratio         {ratio:8.2f}x (wall: >= {TARGET_RATIO}x, < {TARGET_SECONDS:.0f} s)")
    if cpu and floor[1]:
        print(f"  CPU ratio     {floor[1] / cpu:8.2f}x (the work alone, whatever the load)")
    print(f"  machine       {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    missed = []
    if ratio < TARGET_RATIO:
        missed.append("ratio to COPY")
    if seconds >= TARGET_SECONDS:
        missed.append("total time")
    if missed:
        print("  target missed: " + ", ".join(missed))
        return 1
    return 0


def main() -> int:
    args = parse_args()
    admin_url, bench_url = bench_database(os.environ.get("DATABASE_URL", ""), "seed_bench")
    floor_template = f"{urlparse(bench_url).path.lstrip('/')}_floor"
    recreate(admin_url, bench_url)
    print(f"Benchmark database {urlparse(bench_url).path.lstrip('/')} created; migrating …")
    try:
        setup_django(bench_url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{floor_template}" WITH (FORCE)')
            conn.execute(
                f'CREATE DATABASE "{floor_template}" TEMPLATE "{urlparse(bench_url).path[1:]}"'
            )
        seed_run = seed(args, admin_url, bench_url, floor_template)
        floor = copy_floor(args, admin_url, bench_url, floor_template, seed_run[3])
        return report(args, seed_run, floor)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{floor_template}" WITH (FORCE)')
        if args.keep_db:
            print(f"(kept {bench_url})")
        else:
            recreate(admin_url, bench_url, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())
