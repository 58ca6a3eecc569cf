"""Benchmark: a page of every list of the sponsor API, first and deep, at two study sizes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc \\
        .venv/bin/python benchmarks/api_pages.py [--template edc_bulk10k] [--keep-db] \\
        [--reuse-db] [--deep-row 150000] [--repeat 3]

Two throwaway databases beside DATABASE_URL's: ``<name>_api_small``, the default demo
(``seed_demo``: 24 subjects), and ``<name>_api_large``, a copy of ``--template`` (a database
seeded with ``seed_demo --bulk --subjects 10000``; nobody may be connected to it while it is
copied) or, without ``--template``, seeded here through the bulk path (``--subjects``, slow).
Both are migrated and vacuumed. ``--reuse-db`` measures the two as they are.

For the sponsor (the demo user ``sponsor``: every site, pseudonymized), each list of the API (every
exported form, the audit trail, the deletions feed) is read, in a process of its own per
database that has served one request first, as an in-process client would:

* page 1 (the default ordering; the default page size, 100, in the small study; in the large
  one a page of as many rows as the small study's page holds, so that both pages hold the same
  rows: a list of the demo is often shorter than a page);
* the deep page: the page holding row ``--deep-row`` (150,000), or the list's last page when it
  is shorter, reached by the cursor a client following ``next`` would hold there (the position
  of the row before it, signed as the API signs it).

Each figure is the fastest of ``--repeat`` runs (3), beside its floor: the same SQL statements the
request sent (captured), run raw on the same connection and fetched to the end, fastest of as
many runs. Printed per list and page: the rows of the list, the queries of the request, the
milliseconds, the floor, and the growth from the small study to the large one (time and floor).
The target (issue 22): a page's time grows at most 2x from 24 to 10,000 subjects, with the same
number of queries; exit status 1 when a list misses it.
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

READER = "sponsor"
PAGE_SIZE = 100  # the API's default
WARM_UP = "/api/v1/sites/"
GROWTH_TARGET = 2.0
FEED_QUERY = {"deletions": "since=2000-01-01T00:00:00Z"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--template", help="a 10,000-subject database to copy (edc_bulk10k)")
    parser.add_argument("--subjects", type=int, default=10_000, help="without --template")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--reuse-db", action="store_true", help="use the two databases as they are")
    parser.add_argument("--deep-row", type=int, default=150_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--one", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--sizes", default="{}", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the databases -------------------------------------------------------------------------------


def prepare(admin_url: str, url: str, *, template: str | None, subjects: int) -> None:
    """Create, migrate and vacuum one database (in a process of its own: Django binds one)."""
    import psycopg

    name = urlparse(url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    env = {**os.environ, "DATABASE_URL": url}
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True)
    if template is None:
        extra = ["--subjects", str(subjects), "--bulk"] if subjects > 24 else []
        subprocess.run([*manage, "seed_demo", *extra], env=env, check=True, capture_output=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- one database: every list, first and deep page -----------------------------------------------


def list_paths() -> list[str]:
    from exports import records

    return [f.name for f in records.export_forms()] + ["audit-trail", "deletions"]


def deep_cursor(name: str, user, row: int, size: int) -> tuple[str | None, int]:
    """(the cursor of the page that starts at ``row``, or at the last page's first row; the
    list's length): the position of the row before it, as the API signs a position."""
    from exports import api, audit_trail, pagination, records

    if name == "deletions":
        since = audit_trail.params.parse_datetime("since", "2000-01-01")
        return None, len(records.deletions(user, since))
    if name == "audit-trail":
        return _audit_trail_cursor(user, row, size)
    form_api = api.form_api(name)
    keys, order = form_api.page_order(None)
    queryset = records.records(form_api.form, user)
    total = queryset.count()
    start = max(0, min(row, total - size))
    if start == 0:
        return None, total
    before = pagination.ordered(queryset, keys)[start - 1]
    position = pagination.position_of(before, keys)
    return pagination.encode_cursor(pagination.Cursor(order, position)), total


def _audit_trail_cursor(user, row: int, size: int) -> tuple[str | None, int]:
    from django.db import connection

    from exports import audit_trail, pagination

    histories = audit_trail.histories(audit_trail.Filters(), user)
    parts, parameters = [], []
    for label, history in histories.items():
        sql, params = history.values_list("history_date", "history_id").query.sql_with_params()
        parts.append(f"SELECT h.*, %s AS label FROM ({sql}) h")
        parameters.extend([label, *params])
    union = " UNION ALL ".join(parts)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({union}) u", parameters)
        total = cursor.fetchone()[0]
        start = max(0, min(row, total - size))
        if start == 0:
            return None, total
        cursor.execute(
            f"SELECT * FROM ({union}) u ORDER BY 1, 3, 2 OFFSET %s LIMIT 1",
            [*parameters, start - 1],
        )
        date, history_id, label = cursor.fetchone()
    position = (date, label, history_id)
    return pagination.encode_cursor(pagination.Cursor(audit_trail.ORDER, position)), total


def timed_request(client, url: str, repeat: int) -> dict:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    best, statements, rows = float("inf"), [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            body = response.content
            seconds = time.perf_counter() - started
        assert response.status_code == 200, (url, response.status_code, body[:300])
        rows = len(json.loads(body)["results"])
        best = min(best, seconds)
        statements = [q["sql"] for q in queries.captured_queries]
    return {"ms": best * 1000, "queries": len(statements), "rows": rows, "sql": statements}


def floor_ms(statements: list[str], repeat: int) -> float:
    """The request's own SQL, raw: every statement run and fetched to the end."""
    from django.db import connection

    best = float("inf")
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: no Django wrapper, no debug capture
        for _ in range(repeat):
            started = time.perf_counter()
            for sql in statements:
                raw.execute(sql.replace("%", "%%"))
                if raw.description is not None:
                    raw.fetchall()
            best = min(best, time.perf_counter() - started)
    return best * 1000


def run_one(deep_row: int, repeat: int, sizes: dict[str, int]) -> None:
    """In its own process, on DATABASE_URL: print one JSON object of figures. A list's page
    holds ``sizes[name]`` rows (the default page when not given)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = get_user_model().objects.get(username=READER)
    client = Client()
    client.force_login(user)
    assert client.get(WARM_UP).status_code == 200
    figures = {}
    for name in list_paths():
        base = f"/api/v1/{name}/"
        size = sizes.get(name, PAGE_SIZE)
        query = "&".join(
            q for q in (FEED_QUERY.get(name, ""), f"page_size={size}" if name in sizes else "") if q
        )
        cursor, total = deep_cursor(name, user, deep_row, size)
        pages = {"page 1": base + (f"?{query}" if query else "")}
        if cursor is not None:
            from urllib.parse import quote

            pages["deep"] = base + f"?cursor={quote(cursor)}" + (f"&{query}" if query else "")
        figures[name] = {"total": total}
        for page, url in pages.items():
            measured = timed_request(client, url, repeat)
            measured["floor_ms"] = floor_ms(measured.pop("sql"), repeat)
            figures[name][page] = measured
    print(json.dumps(figures))


def measure(url: str, deep_row: int, repeat: int, sizes: dict[str, int] | None = None) -> dict:
    env = {**os.environ, "DATABASE_URL": url, "API_THROTTLE_USER": "1000000/hour"}
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--one",
            url,
            "--deep-row",
            str(deep_row),
            "--repeat",
            str(repeat),
            "--sizes",
            json.dumps(sizes or {}),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"Measuring {url} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(small: dict, large: dict) -> bool:
    ok = True
    print(
        f"\n{'list':26} {'page':7} {'rows':>7} {'q':>3} {'ms':>8} {'floor':>7}  {'->':2} "
        f"{'rows':>7} {'q':>3} {'ms':>8} {'floor':>7} {'growth':>7} {'floor x':>7}"
    )
    for name, at_large in large.items():
        at_small = small[name]
        for page in ("page 1", "deep"):
            if page not in at_large:
                continue
            one, two = at_small.get(page) or at_small["page 1"], at_large[page]
            growth = two["ms"] / one["ms"]
            floor_growth = two["floor_ms"] / one["floor_ms"]
            met = growth <= GROWTH_TARGET and two["queries"] <= one["queries"]
            ok &= met
            print(
                f"{name:26} {page:7} {at_small['total']:>7} {one['queries']:>3} "
                f"{one['ms']:>8.1f} {one['floor_ms']:>7.1f}  -> {at_large['total']:>7} "
                f"{two['queries']:>3} {two['ms']:>8.1f} {two['floor_ms']:>7.1f} "
                f"{growth:>6.2f}x {floor_growth:>6.2f}x" + ("" if met else "  MISSED")
            )
    print(
        "\nrows: the list's length; q: queries of the request; ms: fastest of the runs; floor: "
        "the request's SQL run raw; growth: large / small (a deep page of the small study is its "
        "last page, or page 1 when it has one page)."
    )
    return ok


def main() -> int:
    args = parse_args()
    if args.one:
        setup_django(args.one)
        run_one(args.deep_row, max(1, args.repeat), json.loads(args.sizes))
        return 0
    admin_url, small_url = bench_database(os.environ.get("DATABASE_URL", ""), "api_small")
    _, large_url = bench_database(os.environ.get("DATABASE_URL", ""), "api_large")
    try:
        if not args.reuse_db:
            prepare(admin_url, small_url, template=None, subjects=24)
            prepare(admin_url, large_url, template=args.template, subjects=args.subjects)
        small = measure(small_url, args.deep_row, args.repeat)
        # The same number of rows on both pages: a list of the small study shorter than a page
        # is compared with a page of as many rows of the large one.
        sizes = {name: max(1, min(PAGE_SIZE, f["total"])) for name, f in small.items()}
        large = measure(large_url, args.deep_row, args.repeat, sizes)
        ok = report(small, large)
    finally:
        if not args.keep_db and not args.reuse_db:
            for url in (small_url, large_url):
                recreate(admin_url, url, drop_only=True)
    print("\nAll targets met." if ok else "\nSome targets were missed (see MISSED).")
    return 0 if ok else 1


ROOT = __import__("pgbench_db").ROOT

if __name__ == "__main__":
    raise SystemExit(main())
