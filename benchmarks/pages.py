"""Benchmark: every page's time at the 24-subject demo and at 10,000 subjects, beside its floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc \\
        .venv/bin/python benchmarks/pages.py [--template edc_bulk10k] [--reuse-db] [--keep-db] \\
        [--repeat 3] [--only NAME ...]

Two databases beside DATABASE_URL's: ``<name>_pages24``, migrated and seeded by ``seed_demo``
(the default 24-subject demo), and ``<name>_pages10k``, a copy of the template ``--template``
(``edc_bulk10k``: ``seed_demo --subjects 10000``), migrated. Both are dropped at the end unless
``--keep-db``; ``--reuse-db`` measures them as they are.

Each size is measured in its own process (Django set up on that database): every site page (the
subject list, a subject's page and its forms' pages, the queries list, the dashboard, the SDV
worklist, the lock console, the statisticians' endpoints report), the admin changelists of subjects,
adverse events, data queries and eligibility assessments, and the first page of every API list, each
as the role that sees most of it (the data manager; the statistician for the endpoints report),
through Django's test client. The forms' pages are those of the first randomized subject in site and
sequence order. Each page is rendered once (its queries and the rows they returned are counted:
``rows``, the sum of the rows of every SELECT), then timed once; the two sizes take turns
(``--repeat`` turns, 3) and each page's fastest time counts. At 10,000 subjects the floor is the
page's own SQL (the statements captured when it was counted, values inlined) re-executed raw on
one cursor, fetching every row: the fastest of 3.

Targets (issue 22): each page's time at 10,000 subjects at most 2x its time at 24, with the same
number of queries. A subject's own pages (marked ``*``) show two different subjects, whose records
differ: their query counts are printed, and held constant by tests/test_page_query_counts.py.
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from pgbench_db import ROOT, bench_database, recreate, setup_django

GROWTH_TARGET = 2.0


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", default="edc_bulk10k", help="the 10,000-subject database")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--reuse-db", action="store_true", help="use the databases as they are")
    parser.add_argument("--repeat", type=int, default=3, help="turns of the two sizes (3)")
    parser.add_argument("--only", action="append", help="measure only the pages named so")
    parser.add_argument("--measure", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- in the measuring process -------------------------------------------------------------------


class RowCounter:
    """``connection.execute_wrapper``: the statements run and the rows every SELECT returned."""

    def __init__(self):
        self.statements: list[str] = []
        self.rows = 0

    def __call__(self, execute, sql, params, many, context):
        cursor = context["cursor"]
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", 'UPDATE "django_session"')):
            self.statements.append(cursor.mogrify(sql, params) if params else sql)
        result = execute(sql, params, many, context)
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            self.rows += max(cursor.rowcount or 0, 0)
        return result


def pages() -> list[tuple[str, str, str]]:
    """(name, username, URL) of every page measured."""
    from django.urls import reverse

    from randomization.models import Allocation
    from subjects.models import Subject

    first = (
        Subject.objects.filter(pk__in=Allocation.objects.values("subject_id"))
        .order_by("site__code", "sequence")
        .first()
    )
    ident = {"identifier": first.subject_identifier}
    # A subject's own pages: named with a "*" (see the module's docstring).
    dm, stat = "datamanager", "statistician"
    found = [
        ("subject list", dm, reverse("subjects:list")),
        ("subject page *", dm, reverse("subjects:detail", kwargs=ident)),
        ("eligibility form *", dm, reverse("eligibility:detail", kwargs=ident)),
        ("adverse events *", dm, reverse("adverse_events:list", kwargs=ident)),
        ("treatment calendar *", dm, reverse("treatment:calendar", kwargs=ident)),
        ("tumor assessments *", dm, reverse("efficacy:home", kwargs=ident)),
        ("queries list", dm, reverse("queries:inbox")),
        ("SAEs due", dm, reverse("adverse_events:sae_due")),
        ("dashboard", dm, reverse("dashboard:home")),
        ("SDV worklist", dm, reverse("monitoring:worklist")),
        ("lock console", dm, reverse("monitoring:lock_console")),
        ("endpoints (KM)", stat, reverse("survival:endpoints")),
    ]
    for label, model in (
        ("subjects", "subjects_subject"),
        ("adverse events", "adverse_events_adverseevent"),
        ("queries", "queries_dataquery"),
        ("eligibility", "eligibility_eligibilityassessment"),
    ):
        found.append((f"admin {label}", dm, reverse(f"admin:{model}_changelist")))
    from exports.urls import api_router

    for prefix, _, _ in api_router().registry:
        query = "?since=2000-01-01T00:00:00Z" if prefix == "deletions" else ""
        found.append((f"API {prefix}", dm, f"/api/v1/{prefix}/{query}"))
    return found


def floor_ms(statements: list[str], repeat: int) -> float:
    """The statements re-executed raw on one cursor in a transaction (a ``SET LOCAL`` of the
    page applies), every row fetched: the fastest run, ms."""
    from django.db import connection, transaction

    best = float("inf")
    reads = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH", "SET"))]
    for _ in range(repeat):
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor  # psycopg's own cursor: no Django wrapper
            started = time.perf_counter()
            for sql in reads:
                raw.execute(sql)
                if raw.description is not None:
                    raw.fetchall()
            best = min(best, time.perf_counter() - started)
            transaction.set_rollback(True)
    return best * 1000


def measure(url: str, repeat: int, only: list[str] | None, floor: bool) -> None:
    setup_django(url)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    settings.DEBUG = False
    clients: dict[str, Client] = {}
    results = {}
    for name, username, path in pages():
        if only and name not in only:
            continue
        if username not in clients:
            clients[username] = Client()
            clients[username].force_login(get_user_model().objects.get(username=username))
        client = clients[username]
        client.get(path)  # a first render: the process-wide caches, the modules imported
        counter = RowCounter()
        # Server-side cursors off while counting: the cursor's row count is then every row.
        connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
        try:
            with connection.execute_wrapper(counter):
                response = client.get(path)
        finally:
            connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False
        if response.status_code != 200:
            results[name] = {"status": response.status_code, "path": path}
            continue
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(path)
            best = min(best, time.perf_counter() - started)
        results[name] = {
            "status": 200,
            "path": path,
            "ms": best * 1000,
            "queries": len(counter.statements),
            "rows": counter.rows,
            "bytes": len(response.content),
            "floor_ms": floor_ms(counter.statements, 3) if floor else None,
        }
    print(json.dumps(results))


# --- the driver ---------------------------------------------------------------------------------


def prepare(admin_url: str, small_url: str, large_url: str, template: str) -> None:
    import psycopg

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    recreate(admin_url, small_url)
    for command in (["migrate", "-v0"], ["seed_demo", "--demo-passwords"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env={**env, "DATABASE_URL": small_url},
            check=True,
            stdout=subprocess.DEVNULL,
        )
    recreate(admin_url, large_url, drop_only=True)
    name = large_url.rsplit("/", 1)[1]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=ROOT,
        env={**env, "DATABASE_URL": large_url},
        check=True,
    )
    for url in (small_url, large_url):
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")


def run_size(url: str, args, *, floor: bool) -> dict:
    command = [sys.executable, __file__, "--measure", url, "--repeat", "1"]
    for name in args.only or ():
        command += ["--only", name]
    if floor:
        command.append("--floor")
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(small: dict, large: dict) -> bool:
    """Print one line per page; True when every target is met."""
    header = (
        f"{'page':28} {'ms@24':>8} {'ms@10k':>8} {'growth':>7} {'q@24':>5} {'q@10k':>6} "
        f"{'rows@24':>8} {'rows@10k':>9} {'floor ms':>9} {'KB@10k':>7}  target"
    )
    print(header)
    print("-" * len(header))
    ok = True
    for name, big in large.items():
        little = small.get(name, {})
        if big["status"] != 200 or little.get("status") != 200:
            print(f"{name:28} status {little.get('status')} / {big['status']}  MISSED")
            ok = False
            continue
        growth = big["ms"] / little["ms"]
        same_queries = big["queries"] == little["queries"] or name.endswith("*")
        met = growth <= GROWTH_TARGET and same_queries
        ok &= met
        print(
            f"{name:28} {little['ms']:8.0f} {big['ms']:8.0f} {growth:6.1f}x "
            f"{little['queries']:5} {big['queries']:6} {little['rows']:8} {big['rows']:9} "
            f"{big['floor_ms']:9.1f} {big['bytes'] / 1024:7.0f}  {'met' if met else 'MISSED'}"
        )
    return ok


def main() -> None:
    args = parse_args()
    if args.measure:
        measure(args.measure, args.repeat, args.only, args.floor)
        return
    admin_url, small_url = bench_database(os.environ.get("DATABASE_URL", ""), "pages24")
    _, large_url = bench_database(os.environ.get("DATABASE_URL", ""), "pages10k")
    if not args.reuse_db:
        prepare(admin_url, small_url, large_url, args.template)
    try:
        # The sizes take turns, one timed run of each page a turn: a change of the machine's
        # load while one size is measured does not fall on that size alone.
        small: dict = {}
        large: dict = {}
        for turn in range(args.repeat):
            for url, found, floor in ((small_url, small, False), (large_url, large, turn == 0)):
                for name, page in run_size(url, args, floor=floor).items():
                    if name in found and "ms" in page:
                        page = {**found[name], "ms": min(found[name]["ms"], page["ms"])}
                    found[name] = page
        load = os.getloadavg()[0]
        print(f"Best of {args.repeat} turns; load average {load:.1f} at the end.")
        ok = table(small, large)
    finally:
        if not args.keep_db:
            for url in (small_url, large_url):
                recreate(admin_url, url, drop_only=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
