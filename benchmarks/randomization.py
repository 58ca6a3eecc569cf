"""Benchmark: concurrent randomization on PostgreSQL through the web view, beside a raw-SQL floor.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/edc_rand \\
        .venv/bin/python benchmarks/randomization.py [--allocations 1000] [--workers 16]
        [--runs 3] [--modes floor,no-broker,inline,broker] [--broker redis://127.0.0.1:6379/0]
        [--keep-db]

It creates a throwaway database (``<DATABASE_URL's name>_bench``; dropped at the end unless
``--keep-db``), migrates it, generates a randomization list, and makes ``--allocations``
consented subjects with signed eligible assessments spread evenly over the 8 strata and 10 sites
(their set-up announces no change: no edit check runs before the measured part). Each run of each
mode starts on a fresh copy of that database (``CREATE DATABASE ... TEMPLATE``); ``--workers``
processes (one connection each) start together and randomize every subject, interleaved across
strata:

* ``floor``: raw SQL over psycopg, the rows the service reads and writes and its locks, nothing
  else: the subject locked, its signed assessment's stratification read, the stratum locked, its
  lowest free slot read, the allocation and the subject's new status written with their history
  rows; one transaction per allocation.
* ``no-broker``: no broker (``CELERY_BROKER_URL`` unset, the zero-setup default): each worker
  POSTs the confirmation to the randomize page through Django's in-process client, logged in as
  the subject's site coordinator; the subjects' edit checks run in a thread of the worker after
  the commit (``EDIT_CHECKS_WITHOUT_BROKER = "background"``). Allocations/s is the POSTs'; the
  line after says when every check had run, and the rate counting them.
* ``inline``: the same with ``EDIT_CHECKS_WITHOUT_BROKER = "inline"``: the checks run in the
  request at its commit.
* ``broker``: the same POSTs with Celery on the Redis broker ``--broker`` (its queue is purged
  first: give a database of its own) and a real ``celery worker`` process reading the run's
  database; the checks run there after the debounce. Allocations/s is the POSTs'; the line after
  says when the worker had run every check.

Prints, per mode, the best of ``--runs`` (by throughput): allocations per second (wall clock from
the common start to the last commit) and its ratio to the floor of the same run, latency
p50/p95, the client processes' CPU per allocation (their checks' included), and the SQL
statements: the median POST's (savepoints and the transaction's BEGIN/COMMIT not counted) and
the edit checks' per allocation, wherever they ran in the client process. Then the targets
(16 workers: no-broker >= 0.25x the floor, broker >= 0.3x, <= 12 statements per POST besides
the checks). Every run checks that no slot was used twice, every subject has exactly one allocation,
and each stratum's slots were taken consecutively from the first. Exit status 1 when a check
fails or a target is missed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse, urlunparse

from pgbench_db import ROOT, bench_database, recreate, setup_django

MODES = ("floor", "no-broker", "inline", "broker")
TARGETS = {"no-broker": 0.25, "broker": 0.3, "statements": 12}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allocations", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3, help="runs of each mode (best reported)")
    parser.add_argument(
        "--modes", default=",".join(MODES), help="comma-separated, of " + ", ".join(MODES)
    )
    parser.add_argument(
        "--broker",
        default=os.environ.get("EDC_BENCH_BROKER_URL", "redis://127.0.0.1:6379/0"),
        help="Redis URL of the broker mode (its queue is purged)",
    )
    parser.add_argument("--keep-db", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if args.allocations < 8 or args.workers < 1 or args.runs < 1:
        parser.error("--allocations must be at least 8, --workers and --runs at least 1")
    if not args.modes or set(args.modes) - set(MODES):
        parser.error(f"--modes: some of {', '.join(MODES)}")
    return args


@dataclass(frozen=True)
class Job:
    subject_id: int
    identifier: str
    user_id: int
    stratum: str  # "S3": what the coordinator confirms


def build_study(n: int) -> list[Job]:
    """The list and ``n`` randomizable subjects."""
    from core.registry import subject_changes_unannounced
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
    jobs = []
    started = time.perf_counter()
    with subject_changes_unannounced():
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
            jobs.append(
                Job(subject.pk, subject.subject_identifier, staff[site.pk].pk, f"S{stratum.number}")
            )
            if (i + 1) % 200 == 0:
                print(f"  set-up: {i + 1}/{n} subjects ({time.perf_counter() - started:.0f} s)")
    return jobs


# --- the floor: raw SQL ---------------------------------------------------------------------------

FLOOR_SQL = {
    "subject": "SELECT id, status, site_id FROM subjects_subject WHERE id = %s FOR UPDATE",
    "factors": (
        "SELECT a.macrovascular_invasion OR a.extrahepatic_spread, a.ecog,"
        " a.prior_locoregional_therapy FROM eligibility_eligibilitysignature s"
        " JOIN eligibility_eligibilityassessment a ON a.id = s.assessment_id"
        " WHERE a.subject_id = %s AND NOT s.void ORDER BY s.signed_at DESC, s.id DESC LIMIT 1"
    ),
    "stratum": (
        "SELECT st.id FROM randomization_stratum st JOIN randomization_randomizationlist l"
        " ON l.id = st.rlist_id WHERE l.active AND st.macrovascular_or_extrahepatic = %s"
        " AND st.ecog = %s AND st.prior_locoregional_therapy = %s ORDER BY st.id LIMIT 1"
        " FOR UPDATE OF st"
    ),
    "slot": (
        "SELECT s.id, s.randomization_number, s.arm FROM randomization_slot s"
        " LEFT JOIN randomization_allocation a ON a.slot_id = s.id"
        " WHERE s.stratum_id = %s AND a.id IS NULL ORDER BY s.sequence LIMIT 1"
    ),
    "allocation": (
        "INSERT INTO randomization_allocation (subject_id, slot_id, stratum_id,"
        " randomization_number, arm, allocated_at, allocated_by_id,"
        " macrovascular_or_extrahepatic, ecog, prior_locoregional_therapy)"
        " VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s, %s) RETURNING id"
    ),
    "allocation_history": (
        "INSERT INTO randomization_historicalallocation (id, randomization_number, arm,"
        " allocated_at, macrovascular_or_extrahepatic, ecog, prior_locoregional_therapy,"
        " history_date, history_change_reason, history_type, allocated_by_id, history_user_id,"
        " subject_id, slot_id, stratum_id) SELECT id, randomization_number, arm, allocated_at,"
        " macrovascular_or_extrahepatic, ecog, prior_locoregional_therapy, now(), '', '+',"
        " allocated_by_id, allocated_by_id, subject_id, slot_id, stratum_id"
        " FROM randomization_allocation WHERE id = %s"
    ),
    "status": (
        "UPDATE subjects_subject SET status = 'randomized', status_date = current_date,"
        " updated = now() WHERE id = %s"
    ),
    "status_history": (
        "INSERT INTO subjects_historicalsubject (id, sequence, subject_identifier,"
        " screening_number, screening_date, initials, date_of_birth, age_at_screening, sex,"
        " consent_date, consent_version, status, status_date, created, history_date,"
        " history_change_reason, history_type, history_user_id, site_id)"
        " SELECT id, sequence, subject_identifier, screening_number, screening_date, initials,"
        " date_of_birth, age_at_screening, sex, consent_date, consent_version, status,"
        " status_date, created, now(), 'Randomized', '~', %s, site_id"
        " FROM subjects_subject WHERE id = %s"
    ),
}


def floor_allocate(conn, job: Job) -> int:
    """One allocation in raw SQL; returns the statements it ran."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(FLOOR_SQL["subject"], [job.subject_id])
        cur.execute(FLOOR_SQL["factors"], [job.subject_id])
        mvi, ecog, lrt = cur.fetchone()
        cur.execute(FLOOR_SQL["stratum"], [mvi, ecog, lrt])
        (stratum_id,) = cur.fetchone()
        cur.execute(FLOOR_SQL["slot"], [stratum_id])
        slot_id, number, arm = cur.fetchone()
        cur.execute(
            FLOOR_SQL["allocation"],
            [job.subject_id, slot_id, stratum_id, number, arm, job.user_id, mvi, ecog, lrt],
        )
        (allocation_id,) = cur.fetchone()
        cur.execute(FLOOR_SQL["allocation_history"], [allocation_id])
        cur.execute(FLOOR_SQL["status"], [job.subject_id])
        cur.execute(FLOOR_SQL["status_history"], [job.user_id, job.subject_id])
    return len(FLOOR_SQL)


# --- the workers ---------------------------------------------------------------------------------


class Counter:
    """Django's ``execute_wrapper``: counts the statements, and those of the edit checks."""

    def __init__(self):
        self.statements = 0
        self.checks = 0
        self.in_checks = False

    def __call__(self, execute, sql, params, many, context):
        if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
            self.statements += 1
            self.checks += self.in_checks
        return execute(sql, params, many, context)


def use_broker(url: str) -> None:
    """This process queues the edit checks on ``url`` instead of running them in-process."""
    from django.conf import settings
    from kombu import pools

    from edc.celery import app

    app.conf.update(task_always_eager=False, broker_url=url, result_backend=url)
    settings.CELERY_TASK_ALWAYS_EAGER = False  # what queries.scheduling reads
    settings.CELERY_BROKER_URL = url
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None
    app._local.__dict__.pop("backend", None)


def web_worker(jobs: list[Job], mode: str, broker: str, barrier, results) -> None:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from queries import scheduling, tasks

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]  # the in-process client's
    settings.EDIT_CHECKS_WITHOUT_BROKER = "inline" if mode == "inline" else "background"
    if mode == "broker":
        use_broker(broker)
    counter, in_thread = Counter(), Counter()
    run_checks = tasks.run_edit_checks

    def counted_checks(**kwargs):
        counter.in_checks = True
        try:
            return run_checks(**kwargs)
        finally:
            counter.in_checks = False

    def counted_in_thread(**kwargs):  # the background thread, on its own connection
        in_thread.in_checks = True
        with connection.execute_wrapper(in_thread):
            return run_checks(**kwargs)

    tasks.run_edit_checks = counted_checks
    scheduling.run_edit_checks = counted_in_thread
    clients = {}
    for user in get_user_model().objects.filter(pk__in={j.user_id for j in jobs}):
        clients[user.pk] = Client()
        clients[user.pk].force_login(user)
    urls = [reverse("randomization:randomize", args=[j.identifier]) for j in jobs]
    latencies, errors, per_post = [], [], []
    barrier.wait()
    began, cpu = time.time(), time.process_time()
    with connection.execute_wrapper(counter):
        for job, url in zip(jobs, urls, strict=True):
            t0, before = time.perf_counter(), counter.statements - counter.checks
            try:
                response = clients[job.user_id].post(
                    url, {"stratum": job.stratum, "confirm": "on"}, secure=True
                )
                if response.status_code != 302:
                    errors.append(f"{job.identifier}: HTTP {response.status_code}")
            except Exception as exc:  # reported, and fails the run
                errors.append(f"{job.identifier}: {type(exc).__name__}: {exc}")
            latencies.append(time.perf_counter() - t0)
            per_post.append(counter.statements - counter.checks - before)
    ended = time.time()
    scheduling.background.wait(3600)
    drained, cpu = time.time(), time.process_time() - cpu
    connection.close()
    results.put(
        (
            began,
            ended,
            latencies,
            errors,
            cpu,
            counter.statements + in_thread.statements,
            counter.checks + in_thread.checks,
            drained,
            per_post,
        )
    )


def floor_worker(jobs: list[Job], url: str, barrier, results) -> None:
    import psycopg

    conn = psycopg.connect(url, autocommit=True)
    latencies, errors, statements = [], [], 0
    barrier.wait()
    began, cpu = time.time(), time.process_time()
    for job in jobs:
        t0 = time.perf_counter()
        try:
            statements += floor_allocate(conn, job)
        except Exception as exc:
            errors.append(f"{job.identifier}: {type(exc).__name__}: {exc}")
        latencies.append(time.perf_counter() - t0)
    ended, cpu = time.time(), time.process_time() - cpu
    conn.close()
    results.put((began, ended, latencies, errors, cpu, statements, 0, ended, [len(FLOOR_SQL)]))


# --- a run ----------------------------------------------------------------------------------------


@dataclass
class Outcome:
    mode: str
    done: int
    wall: float
    p50: float
    p95: float
    cpu: float  # s per allocation, the client processes
    statements: float  # per allocation
    checks: float  # of which the edit checks'
    post: float  # the median POST's statements, the checks' not counted
    drained: float | None = None  # s after the last POST until every check had run
    problems: tuple[str, ...] = ()

    @property
    def rate(self) -> float:
        return self.done / self.wall


def start_celery_worker(db_url: str, broker: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "edc.settings",
        "DATABASE_URL": db_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": broker,
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "edc", "worker", "--pool=solo", "-Q", "celery", "--loglevel=warning"),
        *("--without-heartbeat", "--without-gossip", "--without-mingle"),
        *("--hostname", f"edc-bench-{os.getpid()}@%h"),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def wait_until_drained(broker: str, worker: subprocess.Popen, timeout: float = 600) -> float:
    """Seconds until the broker holds no task, queued or reserved (ETA tasks are reserved)."""
    import redis

    client = redis.Redis.from_url(broker)
    t0 = time.perf_counter()
    try:
        while time.perf_counter() - t0 < timeout and worker.poll() is None:
            if client.llen("celery") == 0 and client.hlen("unacked") == 0:
                return time.perf_counter() - t0
            time.sleep(0.2)
    finally:
        client.close()
    return float("nan")


def run_mode(mode: str, jobs: list[Job], args, run_url: str) -> Outcome:
    from django.db import connections

    chunks = [jobs[i :: args.workers] for i in range(args.workers)]
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(args.workers), ctx.Queue()
    celery = None
    if mode == "floor":
        workers = [
            ctx.Process(target=floor_worker, args=(c, run_url, barrier, results)) for c in chunks
        ]
    else:
        if mode == "broker":
            purge(args.broker)
            log = Path(os.environ.get("TMPDIR", "/tmp")) / f"edc-bench-worker-{os.getpid()}.log"
            celery = start_celery_worker(run_url, args.broker, log)
            time.sleep(3)  # the worker connects before the clients start
        workers = [
            ctx.Process(target=web_worker, args=(c, mode, args.broker, barrier, results))
            for c in chunks
        ]
    connections.close_all()  # no connection is shared with a forked worker
    try:
        for w in workers:
            w.start()
        outcomes = [results.get(timeout=3600) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        drained = wait_until_drained(args.broker, celery) if celery is not None else None
    finally:
        if celery is not None:
            os.killpg(celery.pid, 15)
            celery.wait(timeout=30)
    began = min(o[0] for o in outcomes)
    ended = max(o[1] for o in outcomes)
    latencies = sorted(x for o in outcomes for x in o[2])
    errors = [e for o in outcomes for e in o[3]]
    n = len(latencies)
    q = statistics.quantiles(latencies, n=100)
    if mode == "no-broker":
        drained = max(o[7] for o in outcomes) - ended
    problems = tuple(check(len(jobs)) + [f"error: {e}" for e in errors[:5]])
    return Outcome(
        mode=mode,
        done=n - len(errors),
        wall=ended - began,
        p50=q[49],
        p95=q[94],
        cpu=sum(o[4] for o in outcomes) / n,
        statements=sum(o[5] for o in outcomes) / n,
        checks=sum(o[6] for o in outcomes) / n,
        post=statistics.median(x for o in outcomes for x in o[8]),
        drained=drained,
        problems=problems,
    )


def purge(broker: str) -> None:
    import redis

    client = redis.Redis.from_url(broker)
    client.delete("celery", "unacked", "unacked_index")
    client.close()


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


def copy_database(admin_url: str, template: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def report(best: dict[str, Outcome], args) -> list[str]:
    floor = best.get("floor")
    print(
        f"\nBest of {args.runs} run(s), {args.allocations} allocations by {args.workers} "
        "concurrent processes across 8 strata:"
    )
    print("  mode       alloc/s  x floor   p50 ms   p95 ms  CPU ms/alloc  SQL: POST + checks")
    missed = []
    for mode in args.modes:
        o = best[mode]
        ratio = o.rate / floor.rate if floor else float("nan")
        sql = f"{o.post:3.0f} + {o.checks:4.1f}" if mode != "floor" else f"{o.post:3.0f} (raw)"
        print(
            f"  {mode:9} {o.rate:8.1f}  {ratio:6.3f}x {o.p50 * 1000:8.1f} {o.p95 * 1000:8.1f}"
            f"  {o.cpu * 1000:12.1f}  {sql}"
        )
        if o.drained is not None and mode == "broker":
            print(
                f"            (the Celery worker had run every check {o.drained:.1f} s after the "
                "last POST, the debounce included)"
            )
        elif o.drained is not None and mode == "no-broker":
            with_checks = o.done / (o.wall + o.drained)
            print(
                f"            (the threads had run every check {o.drained:.1f} s after the last "
                f"POST: {with_checks:.1f} allocations/s with their checks, "
                f"{with_checks / floor.rate if floor else float('nan'):.3f}x)"
            )
        if floor and mode in TARGETS and ratio < TARGETS[mode]:
            missed.append(f"{mode} {ratio:.3f}x < {TARGETS[mode]}x the floor")
        if mode != "floor" and o.post > TARGETS["statements"]:
            missed.append(f"{mode}: {o.post:.0f} statements per POST")
    print(
        f"  targets  : {args.workers} clients; no-broker >= {TARGETS['no-broker']}x the floor, "
        f"broker >= {TARGETS['broker']}x; <= {TARGETS['statements']} statements per POST"
    )
    return missed


def main() -> int:
    args = parse_args()
    admin_url, bench_url = bench_database(os.environ.get("DATABASE_URL", ""), "bench")
    base = urlparse(bench_url).path.lstrip("/")
    run_name = f"{base}_run"
    run_url = urlunparse(urlparse(bench_url)._replace(path=f"/{run_name}"))
    recreate(admin_url, bench_url)
    print(f"Benchmark database {base} created; migrating …")
    try:
        setup_django(bench_url)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        t0 = time.perf_counter()
        jobs = build_study(args.allocations)
        connections.close_all()
        print(f"Set-up: {len(jobs)} randomizable subjects in {time.perf_counter() - t0:.0f} s")
        connections["default"].settings_dict["NAME"] = run_name
        best: dict[str, Outcome] = {}
        problems = []
        load = os.getloadavg()
        for run in range(args.runs):
            for mode in args.modes:
                copy_database(admin_url, base, run_name)
                outcome = run_mode(mode, jobs, args, run_url)
                connections.close_all()
                print(
                    f"  run {run + 1} {mode:7}: {outcome.rate:7.1f} allocations/s, "
                    f"{outcome.statements:.1f} statements per allocation"
                    + (f" ({outcome.checks:.1f} by the checks)" if outcome.checks else "")
                    + (f"; {'; '.join(outcome.problems)}" if outcome.problems else "")
                )
                problems += [f"{mode}: {p}" for p in outcome.problems]
                if mode not in best or outcome.rate > best[mode].rate:
                    best[mode] = outcome
        missed = report(best, args)
        print(
            f"  machine  : {os.cpu_count()} CPUs, load average {load[0]:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end"
        )
        if problems:
            print("  CHECK FAILED: " + "; ".join(sorted(set(problems))[:10]))
        else:
            print("  checks   : no slot used twice, one allocation each, no gap in a stratum")
        if missed:
            print("  TARGET MISSED: " + "; ".join(missed))
        return 1 if problems or missed else 0
    finally:
        from django.db import connections

        connections.close_all()
        recreate(admin_url, run_url, drop_only=True)
        if args.keep_db:
            print(f"(kept {bench_url})")
        else:
            recreate(admin_url, bench_url, drop_only=True)


if __name__ == "__main__":
    sys.exit(main())
