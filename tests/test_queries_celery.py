"""The edit checks run by Celery for real: a worker process on the Redis broker opens the query a
web-form save calls for; a broker that is down never breaks a save; a burst of saves is checked
once; a task retries when the database fails.

The tests with a worker or a queue need PostgreSQL (the worker reads the test database through
its own connection) and Redis (CI starts both). Redis database ``EDC_TEST_REDIS_URL`` (default
``redis://127.0.0.1:6379/5``; under xdist, that number plus the worker's index) is flushed before
and after each of them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from io import StringIO
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import pytest
import redis
from celery.exceptions import Retry
from celery.schedules import crontab
from django.conf import settings as django_settings
from django.core.cache import cache
from django.core.management import call_command
from django.db import DatabaseError, OperationalError, connection
from django.urls import reverse
from kombu import pools
from kombu.exceptions import OperationalError as KombuOperationalError

from core.registry import subject_changes_unannounced
from edc.celery import app as celery_app
from queries import tasks
from queries.models import DataQuery, MessageKind, QueryStatus, Resolution
from queries.tasks import check_subject, pending_key
from subjects.models import Subject, SubjectStatus

from .builders import days_ago, make_subject
from .builders.workers import worker_redis_url

REDIS_URL = worker_redis_url(os.environ.get("EDC_TEST_REDIS_URL", "redis://127.0.0.1:6379/5"))
CLOSED_PORT_URL = "redis://127.0.0.1:6390/0"  # nothing listens there: the broker is down
DEBOUNCE = 1  # seconds the on-commit task waits (EDIT_CHECK_SETTINGS["debounce_seconds"])
WORKER_TIMEOUT = 30  # seconds a test waits for the worker before it fails

# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_pending_markers():
    """The debounce markers live in this process's cache: none leaks from a test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def redis_db():
    """The test's own Redis database, empty before and after. CI starts Redis: no silent skip."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"these tests need Redis at {REDIS_URL} (start redis-server): {exc}")
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def _reset_connections():
    """Forget the Celery app's broker connections and result backend (built from the old URL)."""
    pools.reset()  # kombu's process-wide connection pools, closed and forgotten
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    celery_app._local.__dict__.pop("backend", None)


@pytest.fixture
def publish_to(settings):
    """``publish_to(url)``: the web process queues tasks on the broker at ``url`` instead of
    running them in-process, as in production (the result store on the same Redis, as the
    settings make it); everything is put back afterwards."""
    names = ("task_always_eager", "broker_url", "result_backend")
    saved = {name: celery_app.conf[name] for name in names}
    settings.EDIT_CHECK_SETTINGS = {"debounce_seconds": DEBOUNCE}

    def publish(url: str) -> None:
        celery_app.conf.update(task_always_eager=False, broker_url=url, result_backend=url)
        settings.CELERY_TASK_ALWAYS_EAGER = False  # what queries.scheduling reads
        settings.CELERY_BROKER_URL = url
        _reset_connections()

    yield publish
    celery_app.conf.update(saved)
    _reset_connections()


def _database_url() -> str:
    """The test database (pytest-django's "test_" + the configured name), for another process."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}{port}/{quote(db['NAME'], safe='')}"


class Worker:
    def __init__(self, process: subprocess.Popen, log: Path):
        self.process = process
        self.log_path = log

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)


@pytest.fixture
def celery_worker(request, transactional_db, redis_db, tmp_path):
    """A real ``celery worker`` process on the Redis broker, reading the test database."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "edc.settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_RESULT_BACKEND": REDIS_URL,
    }
    log = tmp_path / "worker.log"
    command = [
        str(Path(sys.executable).with_name("celery")),
        *("-A", "edc", "worker", "--pool=solo", "--concurrency=1", "-Q", "celery"),
        *("--without-heartbeat", "--without-gossip", "--without-mingle"),
        *("--loglevel=info", "--hostname", f"edc-test-{os.getpid()}@%h"),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with all its children
        )
    worker = Worker(process, log)
    request.addfinalizer(worker.stop)  # before the test database is flushed (and dropped)
    return worker


def wait_for(condition, worker: Worker, what: str):
    """Poll ``condition`` every 0.2 s until it holds; fail after WORKER_TIMEOUT seconds or when
    the worker died, showing the worker's log."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while not (found := condition()):
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}):\n{worker.log}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {WORKER_TIMEOUT} s; worker log:\n{worker.log}")
        time.sleep(0.2)
    return found


@pytest.fixture
def staff_client(client, coordinator):
    client.force_login(coordinator)
    return client


def unconsented_subject(site, coordinator) -> Subject:
    """Screened 40 days ago, consent not recorded yet: recording it (dated that day) makes a
    subject still in screening more than 28 days after consent (SUBJ-005)."""
    with subject_changes_unannounced():
        return make_subject(site, by=coordinator, consented=False, screening_date=days_ago(40))


def post_consent(client, subject: Subject):
    return client.post(
        reverse("subjects:consent", args=[subject.subject_identifier]),
        {"consent_date": days_ago(40).isoformat(), "consent_version": "2.0"},
    )


def subj_005(subject: Subject):
    return DataQuery.objects.filter(subject=subject, check_code="SUBJ-005")


def task_results(worker: Worker) -> list[str]:
    """What the worker logged of each check_subject task that succeeded."""
    return re.findall(
        r"Task queries\.check_subject\[[\w-]+\] succeeded in [\d.]+s: (\{[^}]*\})", worker.log
    )


# --- a real worker on the real broker ----------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)  # committed data: the worker reads it
def test_a_worker_opens_the_query_of_a_web_form_save_and_closes_it_after_the_correction(
    celery_worker, publish_to, staff_client, site, coordinator
):
    subject = unconsented_subject(site, coordinator)
    publish_to(REDIS_URL)

    response = post_consent(staff_client, subject)

    assert response.status_code == 302
    query = wait_for(lambda: subj_005(subject).first(), celery_worker, "SUBJ-005 query")
    assert query.status == QueryStatus.OPEN
    assert query.raised_by.username == "edc-system"
    assert query.field == "status"
    results = wait_for(lambda: task_results(celery_worker), celery_worker, "task log line")
    assert "'opened': 1" in results[0]

    # Once that task has run, the next save is checked too: the screen failure closes the query.
    response = staff_client.post(
        reverse("subjects:status", args=[subject.subject_identifier]),
        {
            "status": SubjectStatus.SCREEN_FAILED,
            "on_date": days_ago(0).isoformat(),
            "reason": "Screen failure: AFP assay not repeated in window",
        },
    )

    assert response.status_code == 302
    query = wait_for(
        lambda: subj_005(subject).filter(status=QueryStatus.CLOSED).first(),
        celery_worker,
        "closed SUBJ-005 query",
    )
    assert query.resolution == Resolution.RESOLVED_BY_DATA_CHANGE
    assert query.thread.get(kind=MessageKind.CLOSED).author.username == "edc-system"
    assert subj_005(subject).count() == 1
    later = wait_for(lambda: task_results(celery_worker)[1:], celery_worker, "second log line")
    assert "'closed': 1" in later[0]


# --- the broker is down ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_broker_down_the_save_succeeds_and_the_next_sweep_opens_the_query(
    publish_to, staff_client, site, coordinator, caplog
):
    subject = unconsented_subject(site, coordinator)
    publish_to(CLOSED_PORT_URL)

    with caplog.at_level(logging.WARNING):
        response = post_consent(staff_client, subject)

    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.consent_date == days_ago(40)
    warnings = [r for r in caplog.records if "not queued" in r.getMessage()]
    assert len(warnings) == 1
    # The save gave up at the first refused connection to the broker (kombu's OperationalError):
    # no reconnecting to a result store (the tasks keep no results), no retry loop.
    assert isinstance(warnings[0].exc_info[1], KombuOperationalError)
    assert not [r for r in caplog.records if "Retry" in r.getMessage()]
    assert cache.get(pending_key(subject.pk)) is None  # the next save tries the broker again
    assert not subj_005(subject).exists()

    out = StringIO()
    call_command("run_edit_checks", stdout=out)

    assert "1 opened" in out.getvalue()
    query = subj_005(subject).get()
    assert query.status == QueryStatus.OPEN
    assert query.raised_by.username == "edc-system"


# --- a burst of saves: one task ----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_saves_of_one_subject_queues_one_task(
    redis_db, publish_to, staff_client, site, coordinator
):
    with subject_changes_unannounced():
        subject = make_subject(site, by=coordinator, initials="AB")
    publish_to(REDIS_URL)
    url = reverse("subjects:edit", args=[subject.subject_identifier])
    form = {
        "screening_number": subject.screening_number,
        "screening_date": subject.screening_date.isoformat(),
        "date_of_birth": subject.date_of_birth.isoformat(),
        "sex": subject.sex,
    }

    for initials in ("AC", "AD", "AE"):
        response = staff_client.post(url, {**form, "initials": initials, "reason": "Typo"})
        assert response.status_code == 302

    assert Subject.objects.get(pk=subject.pk).initials == "AE"
    queued = [json.loads(message) for message in redis_db.lrange("celery", 0, -1)]
    assert len(queued) == 1
    assert queued[0]["headers"]["task"] == "queries.check_subject"
    assert queued[0]["headers"]["argsrepr"] == f"({subject.pk},)"
    assert queued[0]["headers"]["eta"]  # it waits for the burst to end


# --- retries -----------------------------------------------------------------------------------


def test_the_tasks_retry_with_backoff_on_database_errors_and_keep_no_result():
    for task in (check_subject, tasks.sweep_study):
        assert task.autoretry_for == (DatabaseError,)
        assert task.retry_backoff and task.retry_backoff_max and task.max_retries
        assert task.ignore_result  # a save never waits on a result store (see the broker test)


@pytest.mark.django_db
def test_a_database_error_is_retried_with_backoff_and_the_retry_opens_the_query(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(40))
    real = tasks.run_edit_checks
    calls = []

    def database_restarting_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OperationalError("the database system is starting up")
        return real(**kwargs)

    with mock.patch.object(tasks, "run_edit_checks", database_restarting_once):
        with pytest.raises(Retry) as retry:
            check_subject.apply(args=(subject.pk,))
        assert isinstance(retry.value.exc, OperationalError)
        assert 0 <= retry.value.when <= check_subject.retry_backoff  # first backoff, jittered
        assert not subj_005(subject).exists()

        result = retry.value.sig.apply()  # the retry, when its time comes

    assert result.successful()
    assert len(calls) == 2
    assert subj_005(subject).get().status == QueryStatus.OPEN


@pytest.mark.django_db
def test_check_subject_does_not_retry_a_bug(site, coordinator):
    subject = make_subject(site, by=coordinator)
    calls = []

    def broken(**kwargs):
        calls.append(kwargs)
        raise ValueError("a bug, not a database outage")

    with mock.patch.object(tasks, "run_edit_checks", broken), pytest.raises(ValueError):
        check_subject.apply(args=(subject.pk,))

    assert len(calls) == 1


# --- the nightly sweep -------------------------------------------------------------------------


def test_the_beat_schedule_sweeps_the_whole_study_at_the_configured_time():
    entry = celery_app.conf.beat_schedule["edit-check-sweep"]
    minute, hour, day, month, weekday = django_settings.EDIT_CHECK_SWEEP.split()

    assert entry["task"] == "queries.sweep_study"
    assert entry["task"] in celery_app.tasks  # registered: the worker knows it
    assert tasks.sweep_study.name == entry["task"]
    assert entry["schedule"] == crontab(
        minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday
    )


# --- no broker: a thread of the process checks after the response ------------------------------


@pytest.mark.django_db(transaction=True)  # committed data: the thread reads on its own connection
def test_without_a_broker_a_thread_checks_the_saved_subjects_after_the_response(
    settings, staff_client, site, coordinator
):
    from queries.scheduling import background

    settings.EDIT_CHECKS_WITHOUT_BROKER = "background"  # the default without a broker
    first = unconsented_subject(site, coordinator)
    second = unconsented_subject(site, coordinator)
    held = threading.Event()
    run = tasks.run_edit_checks  # the sweep's function, which the thread runs too

    def held_until_both_saved(**kwargs):
        held.wait(30)  # the request does not wait for its checks: both saves return first
        return run(**kwargs)

    with mock.patch("queries.scheduling.run_edit_checks", side_effect=held_until_both_saved) as r:
        assert post_consent(staff_client, first).status_code == 302
        assert post_consent(staff_client, second).status_code == 302
        assert not subj_005(first).exists() and not subj_005(second).exists()
        held.set()
        assert background.wait(30)

    assert subj_005(first).get().status == QueryStatus.OPEN
    assert subj_005(second).get().status == QueryStatus.OPEN
    # Both subjects in one run or one each, never a subject checked twice for one save.
    checked = [s for c in r.call_args_list for s in c.kwargs["subject_ids"]]
    assert sorted(checked) == sorted([first.pk, second.pk])
