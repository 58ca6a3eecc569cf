"""Benchmark: concurrent randomization on PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_rand \\
        .venv/bin/python benchmarks/randomization.py [--allocations 1000] [--workers 16]
        [--mode processes|threads] [--keep-db]

It creates a throwaway database (``<DATABASE_URL's name>_bench``; dropped at the end unless
``--keep-db``), migrates it, generates a randomization list, and makes ``--allocations``
consented subjects with signed eligible assessments spread evenly over the 8 strata and 10 sites.
Then ``--workers`` workers (processes by default: one DB connection each) start together and
call ``randomization.services.randomize`` for every subject, interleaved across strata.

Prints allocations per second (wall clock from the common start to the last commit), latency
p50/p95/max per allocation, and checks that no slot was used twice, every subject has exactly
one allocation, and each stratum's slots were taken consecutively from the first.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import threading
import time
from urllib.parse import urlparse

from pgbench_db import bench_database, recreate, setup_django


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allocations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--mode", choices=("processes", "threads"), default="processes")
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    if args.allocations < 8 or args.workers < 1:
        parser.error("--allocations must be at least 8 and --workers at least 1")
    return args


def build_study(n: int) -> list[tuple[int, int]]:
    """The list and ``n`` randomizable subjects; returns (subject id, user id) pairs."""
    from core.roles import Role
    from randomization import listgen, services
    from tests.builders import make_eligible_assessment, make_site, make_subject, make_user

    per_stratum = -(-n // len(listgen.STRATA))
    slots = max(20, -(-per_stratum * 12 // 10 // 10) * 10)  # 20 % spare, a multiple of 10
    statistician = make_user(Role.STATISTICIAN, username="bench-statistician")
    services.generate_randomization_list(seed=4242, slots_per_stratum=slots, user=statistician)
    sites = [make_site(f"B{i:02d}") for i in range(10)]
    staff = {s.pk: make_user(Role.SITE_STAFF, s) for s in sites}
    investigators = {s.pk: make_user(Role.INVESTIGATOR, s) for s in sites}
    pairs = []
    started = time.perf_counter()
    for i in range(n):
        stratum = listgen.STRATA[i % len(listgen.STRATA)]
        site = sites[i % len(sites)]
        subject = make_subject(site, by=staff[site.pk])
        make_eligible_assessment(
            subject,
            by=staff[site.pk],
            investigator=investigators[site.pk],
            macrovascular_invasion=stratum.macrovascular_or_extrahepatic,
            extrahepatic_spread=False,
            ecog=stratum.ecog,
            prior_locoregional_therapy=stratum.prior_locoregional_therapy,
        )
        pairs.append((subject.pk, staff[site.pk].pk))
        if (i + 1) % 200 == 0:
            print(f"  set-up: {i + 1}/{n} subjects ({time.perf_counter() - started:.0f} s)")
    return pairs


def work(pairs, start_barrier, results) -> None:
    """One worker: randomize its subjects one after the other; report latencies and errors."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    from randomization import services
    from subjects.models import Subject

    users = {u.pk: u for u in get_user_model().objects.filter(pk__in={p[1] for p in pairs})}
    latencies, errors = [], []
    start_barrier.wait()
    began, cpu = time.time(), time.process_time()
    for subject_id, user_id in pairs:
        t0 = time.perf_counter()
        try:
            # As the web view does: the subject with its site, then the service.
            subject = Subject.objects.select_related("site").get(pk=subject_id)
            services.randomize(subject, users[user_id])
        except Exception as exc:  # reported, and fails the run
            errors.append(f"{subject_id}: {type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - t0)
    ended, cpu = time.time(), time.process_time() - cpu
    connection.close()
    results.put((began, ended, latencies, errors, cpu))


def check(n: int) -> list[str]:
    from django.db import connection
    from django.db.models import Count, Max

    from randomization.models import Allocation

    problems = []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT slot_id FROM randomization_allocation GROUP BY slot_id HAVING COUNT(*) > 1"
        )
        if cursor.fetchall():
            problems.append("a slot was used twice")
    allocations = Allocation.objects.count()
    if allocations != n:
        problems.append(f"{allocations} allocations for {n} subjects")
    if Allocation.objects.values("subject").distinct().count() != allocations:
        problems.append("a subject was allocated twice")
    per_stratum = Allocation.objects.values("stratum__number").annotate(
        n=Count("pk"), top=Max("slot__sequence")
    )
    for row in per_stratum:
        if row["n"] != row["top"]:
            problems.append(
                f"stratum S{row['stratum__number']}: {row['n']} allocations but slots up to "
                f"{row['top']} taken (a gap)"
            )
    return problems


def main() -> int:
    args = parse_args()
    admin_url, bench_url = bench_database(os.environ.get("DATABASE_URL", ""), "bench")
    recreate(admin_url, bench_url)
    print(f"Benchmark database {urlparse(bench_url).path.lstrip('/')} created; migrating …")
    try:
        setup_django(bench_url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        pairs = build_study(args.allocations)
        print(f"Set-up: {len(pairs)} randomizable subjects in {time.perf_counter() - t0:.0f} s")
        chunks = [pairs[i :: args.workers] for i in range(args.workers)]
        connections.close_all()  # no connection is shared with a forked worker

        if args.mode == "processes":
            ctx = multiprocessing.get_context("fork")
            barrier, results = ctx.Barrier(args.workers), ctx.Queue()
            workers = [ctx.Process(target=work, args=(c, barrier, results)) for c in chunks]
        else:
            import queue

            barrier, results = threading.Barrier(args.workers), queue.Queue()
            workers = [threading.Thread(target=work, args=(c, barrier, results)) for c in chunks]
        load = os.getloadavg()
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=600) for _ in workers]
        for w in workers:
            w.join(timeout=60)

        began = min(o[0] for o in outcomes)
        ended = max(o[1] for o in outcomes)
        latencies = sorted(x for o in outcomes for x in o[2])
        errors = [e for o in outcomes for e in o[3]]
        wall = ended - began
        done = len(latencies) - len(errors)
        q = statistics.quantiles(latencies, n=100)
        print(
            f"\n{done} allocations by {args.workers} concurrent {args.mode} across 8 strata "
            f"in {wall:.2f} s"
        )
        print(f"  throughput : {done / wall:.0f} allocations/s")
        if args.mode == "processes":
            cpu = sum(o[4] for o in outcomes) / max(1, len(latencies))
            print(f"  client CPU : {cpu * 1000:.1f} ms per allocation (Python, all workers)")
        print(
            f"  latency    : p50 {q[49] * 1000:.1f} ms, p95 {q[94] * 1000:.1f} ms, "
            f"max {latencies[-1] * 1000:.1f} ms"
        )
        print(f"  machine    : {os.cpu_count()} CPUs, load average {load[0]:.2f} at the start")
        problems = check(args.allocations) + [f"error: {e}" for e in errors[:10]]
        if problems:
            print("  CHECK FAILED: " + "; ".join(problems))
            return 1
        print("  checks     : no slot used twice, one allocation per subject, no gap in a stratum")
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep_db:
            print(f"(kept {bench_url})")
        else:
            recreate(admin_url, bench_url, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())
