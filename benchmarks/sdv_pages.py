"""Benchmark: the SDV worklist and the dashboard, at the demo's size and at 10,000 subjects.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc \\
        .venv/bin/python benchmarks/sdv_pages.py [--subjects 10000] [--template edc_bulk10k]
        [--runs 3] [--keep-db]

Two throwaway databases beside DATABASE_URL's: ``<name>_sdv_small``, migrated and seeded with
``seed_demo`` (24 subjects), and ``<name>_sdv_large``: a copy of the template database
(``--template``, a bulk-seeded 10,000-subject demo, if it exists and nobody is connected to
it), migrated; otherwise migrated and seeded with ``seed_demo --subjects N`` (slow). Both are
vacuumed and analyzed. Dropped at the end unless ``--keep-db``.

Each size is measured in its own process, through Django's test client (in process, no HTTP),
for the data manager (every site) and a monitor (their sites): the worklist's first page
(``/monitoring/``) and the dashboard. Each page is requested once to warm the process, then
timed, best of ``--runs``; beside it its *floor*, the page's own SQL alone: the statements it
ran (captured) executed again raw on a cursor, best of ``--runs``. Printed: time, floor, the
number of SQL statements at both sizes, and the growth from the small to the large study
(target: at most 2x, the same number of statements). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlparse

from pgbench_db import bench_database, recreate, setup_django

PAGES = {"worklist": "monitoring:worklist", "dashboard": "dashboard:home"}
USERS = {"data manager": "datamanager", "monitor": "monitor"}
GROWTH_TARGET = 2.0
SMALL = 24


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=10_000, help="the large study's size")
    parser.add_argument(
        "--template",
        default="edc_bulk10k",
        help="a database to copy as the large study ('' to seed it with seed_demo)",
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each page (best)")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the child process: its URL
    args = parser.parse_args()
    if args.subjects <= SMALL or args.runs < 1:
        parser.error(f"--subjects must be more than {SMALL} and --runs at least 1")
    return args


# --- the child process: one database, measured ----------------------------------------------


def best(function, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        function()
        times.append(time.perf_counter() - t0)
    return min(times)


def raw_sql(statements: list[str]) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for sql in statements:
            cursor.execute(sql)
            if cursor.description is not None:
                cursor.fetchall()


def measure_page(client, url: str, runs: int) -> dict:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    def get():
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url}: status {response.status_code}")
        return response

    get()  # warm: templates, content types, the user's memberships
    reset_queries()  # as the request will (request_started): the capture counts from 0
    with CaptureQueriesContext(connection) as captured:
        size = len(get().content)
    ran = captured.captured_queries  # read now: the next request empties the log
    statements = [
        q["sql"]
        for q in ran
        if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK"))
    ]
    return {
        "time": best(get, runs),
        "floor": best(lambda: raw_sql(statements), runs),
        "queries": len(ran),
        "bytes": size,
    }


def measure(url: str, runs: int) -> dict:
    setup_django(url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.urls import reverse

    from adverse_events.models import AdverseEvent
    from subjects.models import Subject

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the test client's host
    figures: dict = {
        "subjects": Subject.objects.count(),
        "aes": AdverseEvent.objects.count(),
        "pages": {},
    }
    for who, username in USERS.items():
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        for page, name in PAGES.items():
            figures["pages"][f"{page}|{who}"] = measure_page(client, reverse(name), runs)
    return figures


# --- the parent: the databases, the children, the report --------------------------------------


def run_django(url: str, *command: str) -> None:
    """A manage.py command on ``url`` (its own process: Django is set up once per process)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", *command], cwd=root, env=env, check=True)


def vacuum(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def template_ready(admin_url: str, template: str) -> bool:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [template]).fetchone()
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [template]
        ).fetchone()
    return bool(exists) and not busy[0]


def prepare_small(admin_url: str, url: str) -> None:
    recreate(admin_url, url)
    run_django(url, "migrate", "--verbosity", "0")
    run_django(url, "seed_demo", "--subjects", str(SMALL))
    vacuum(url)


def prepare_large(admin_url: str, url: str, args) -> None:
    import psycopg

    name = urlparse(url).path.lstrip("/")
    recreate(admin_url, url, drop_only=True)
    if args.template and template_ready(admin_url, args.template):
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{args.template}"')
        print(f"{name}: a copy of {args.template}", flush=True)
        run_django(url, "migrate", "--verbosity", "0")
    else:
        print(f"{name}: seeding {args.subjects} subjects (no template {args.template!r} free)")
        recreate(admin_url, url)
        run_django(url, "migrate", "--verbosity", "0")
        run_django(url, "seed_demo", "--subjects", str(args.subjects), "--bulk")
    vacuum(url)


def child(url: str, runs: int) -> dict:
    env = {**os.environ, "DATABASE_URL": url}
    command = [sys.executable, os.path.abspath(__file__), "--measure", url, "--runs", str(runs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"measuring {url} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(small: dict, large: dict) -> list[str]:
    print(
        f"\nsmall: {small['subjects']} subjects, {small['aes']} AEs; "
        f"large: {large['subjects']} subjects, {large['aes']} AEs (best of each)"
    )
    print(
        f"{'page':<22} {'small: time':>11} {'floor':>8} {'SQL':>4}"
        f" {'large: time':>12} {'floor':>8} {'SQL':>4}  {'growth':>7}"
    )
    missed = []
    for key, s in small["pages"].items():
        lg = large["pages"][key]
        page, who = key.split("|")
        growth = lg["time"] / s["time"]
        print(
            f"{page + ', ' + who:<22} {s['time'] * 1000:8.1f} ms {s['floor'] * 1000:5.1f} ms"
            f" {s['queries']:4d} {lg['time'] * 1000:9.1f} ms {lg['floor'] * 1000:5.1f} ms"
            f" {lg['queries']:4d}  {growth:6.2f}x"
        )
        if growth > GROWTH_TARGET:
            missed.append(f"{page} ({who}) grows {growth:.1f}x")
        if lg["queries"] != s["queries"]:
            missed.append(f"{page} ({who}): {s['queries']} -> {lg['queries']} statements")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    return missed


def main() -> int:
    args = parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.runs)))
        return 0
    base = os.environ.get("DATABASE_URL", "")
    admin_url, small_url = bench_database(base, "sdv_small")
    _, large_url = bench_database(base, "sdv_large")
    try:
        prepare_small(admin_url, small_url)
        prepare_large(admin_url, large_url, args)
        small, large = child(small_url, args.runs), child(large_url, args.runs)
        missed = report(small, large)
    finally:
        if args.keep_db:
            print(f"(kept {small_url} and {large_url})")
        else:
            recreate(admin_url, small_url, drop_only=True)
            recreate(admin_url, large_url, drop_only=True)
    if missed:
        print("target missed: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
