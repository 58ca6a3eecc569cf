"""Benchmark: the edit-check sweep on PostgreSQL, over a large study.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc \\
        .venv/bin/python benchmarks/edit_checks.py [--subjects 10000] [--sample 25] [--keep-db]

It creates a throwaway database (``<DATABASE_URL's name>_checks_bench``; dropped at the end unless
``--keep-db``), migrates it and seeds the demo study with ``--subjects`` subjects through
``seed_demo``'s bulk path (``core.demo.run_seeders`` with ``bulk=True``: eligibility, allocations,
about 20 adverse events per subject with their causalities, the demo's deliberate problems),
without the queries app's seeder (the bulk path ``ANALYZE``s the tables it loaded).

Then it times, each beside its *floor* (the checks' SQL alone: every check's finder evaluated and
its rows shaped into violations, nothing written: ``queries.sweep.find_violations``):

* the first sweep (``run_edit_checks()``: opens the queries of every violation);
* the second sweep (nothing to change: every query is kept);
* one subject's checks (``run_edit_checks(subject_ids=[id])``, what the task after a save runs):
  the median over ``--sample`` randomized subjects.

Targets on a 2-core machine: first sweep < 15 s, second < 5 s and within 2x its floor, one
subject < 50 ms. Exit status 1 when a target is missed or the second sweep changes anything.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from urllib.parse import urlparse

from pgbench_db import bench_database, recreate, setup_django

TARGETS = {"first": 15.0, "second": 5.0, "second_vs_floor": 2.0, "subject_ms": 50.0}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=25, help="subjects timed one by one")
    parser.add_argument("--seed", type=int, default=20201001, help="random seed of the demo")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    if args.subjects < 10 or args.sample < 1:
        parser.error("--subjects must be at least 10 and --sample at least 1")
    return args


def seed(n: int, seed: int) -> None:
    from django.db import transaction
    from django.utils import timezone

    from core.demo import DemoContext, run_seeders

    ctx = DemoContext(
        n_subjects=n,
        rng=random.Random(seed),
        today=timezone.localdate(),
        write=lambda text: print(f"  {text}", flush=True),
        password="benchmark",
        bulk=True,
    )
    with transaction.atomic():
        run_seeders(ctx, skip_apps=("queries",))
    print(f"Seeded {n} subjects in {ctx.elapsed:.0f} s")


def timed(function, repeat: int = 1) -> tuple[float, object]:
    """(median seconds over ``repeat`` calls, the last call's result)."""
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def study_floor() -> tuple[float, dict]:
    from queries.checks import CHECKS, Scope
    from queries.sweep import find_violations

    return timed(lambda: find_violations(CHECKS, Scope()), repeat=3)


def sample_subjects(k: int) -> list[int]:
    from randomization.models import Allocation

    ids = sorted(Allocation.objects.values_list("subject_id", flat=True))
    return random.Random(1).sample(ids, min(k, len(ids)))


def one_subject(ids: list[int]) -> tuple[float, float]:
    """(median seconds of one subject's checks, median of their floor)."""
    from queries.checks import CHECKS, Scope
    from queries.sweep import find_violations, run_edit_checks

    floors = [timed(lambda i=i: find_violations(CHECKS, Scope(subject_ids={i})))[0] for i in ids]
    runs = [timed(lambda i=i: run_edit_checks(subject_ids=[i]))[0] for i in ids]
    return statistics.median(runs), statistics.median(floors)


def report(figures: dict) -> list[str]:
    f = figures
    print("\n                          time    floor (checks' SQL)   target")
    print(f"  first sweep        {f['first']:8.2f} s   {f['floor1']:8.2f} s          < 15 s")
    print(
        f"  second sweep       {f['second']:8.2f} s   {f['floor2']:8.2f} s          "
        f"< 5 s, <= 2 x floor ({f['second'] / f['floor2']:.2f} x)"
    )
    print(
        f"  one subject        {f['subject'] * 1000:8.1f} ms  {f['subject_floor'] * 1000:8.1f} ms"
        f"         < 50 ms (median of {f['sample']})"
    )
    missed = []
    if f["first"] >= TARGETS["first"]:
        missed.append("first sweep")
    if f["second"] >= TARGETS["second"] or f["second"] > TARGETS["second_vs_floor"] * f["floor2"]:
        missed.append("second sweep")
    if f["subject"] * 1000 >= TARGETS["subject_ms"]:
        missed.append("one subject")
    return missed


def measure(args) -> int:

    from queries.models import DataQuery
    from queries.sweep import run_edit_checks

    floor1, violations = study_floor()
    by_check = Counter(code for code, *_ in violations)
    print(
        f"\n{len(violations)} violations: "
        + ", ".join(f"{code} {n}" for code, n in sorted(by_check.items()))
    )
    first, result1 = timed(run_edit_checks)
    print(f"First sweep: {result1}")
    floor2, _ = study_floor()
    second, result2 = timed(run_edit_checks)
    print(f"Second sweep: {result2}")
    subject, subject_floor = one_subject(sample_subjects(args.sample))
    missed = report(
        {
            "first": first,
            "floor1": floor1,
            "second": second,
            "floor2": floor2,
            "subject": subject,
            "subject_floor": subject_floor,
            "sample": args.sample,
        }
    )
    print(f"  queries            {DataQuery.objects.count()} opened by the first sweep")
    print(f"  machine            {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    problems = [f"target missed: {m}" for m in missed]
    if result2.opened or result2.closed:
        problems.append(f"the second sweep changed something ({result2})")
    if problems:
        print("  " + "; ".join(problems))
        return 1
    return 0


def main() -> int:
    args = parse_args()
    admin_url, bench_url = bench_database(os.environ.get("DATABASE_URL", ""), "checks_bench")
    recreate(admin_url, bench_url)
    print(f"Benchmark database {urlparse(bench_url).path.lstrip('/')} created; migrating …")
    try:
        setup_django(bench_url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        seed(args.subjects, args.seed)
        return measure(args)
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_db:
            print(f"(kept {bench_url})")
        else:
            recreate(admin_url, bench_url, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())
