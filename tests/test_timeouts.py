"""Timeouts (issue 12, defect 8, and the idle session): a held stratum lock makes randomization
answer "busy" within RANDOMIZATION_LOCK_TIMEOUT instead of hanging; web requests run with a
statement_timeout that management commands and the Celery worker do not get; a statement the
database cancels is a 503 with a sentence; a session ends after 30 idle minutes, and only then."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import path, reverse
from django.utils import timezone

from core.roles import Role
from edc import urls as edc_urls
from randomization import services
from randomization.models import Allocation, Stratum
from subjects.models import Subject, SubjectStatus

from .builders import ensure_active_list, make_eligible_subject, make_site, make_user

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def another_connection_holding_every_stratum():
    """A second, real database connection locks every stratum row (as a randomization stuck in
    its transaction would) until the block ends."""
    db = connection.settings_dict
    other = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
    )
    try:
        other.execute(f'SELECT id FROM "{Stratum._meta.db_table}" FOR UPDATE')
        yield
    finally:
        other.rollback()
        other.close()


@pytest.fixture
def eligible(db):
    ensure_active_list()
    site = make_site("L1")
    staff = make_user(Role.SITE_STAFF, site, username="nurse")
    return make_eligible_subject(site, by=staff), staff


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_held_stratum_lock_makes_randomization_busy_not_hang(eligible, settings):
    subject, staff = eligible
    settings.RANDOMIZATION_LOCK_TIMEOUT = 1
    with another_connection_holding_every_stratum():
        started = time.monotonic()
        with pytest.raises(services.RandomizationBusy, match="busy.*Try again in a moment"):
            services.randomize(subject, staff)
        waited = time.monotonic() - started
    assert 0.9 <= waited < 5  # the lock_timeout, not the holder, decided
    assert not Allocation.objects.exists()
    assert Subject.objects.get(pk=subject.pk).status == SubjectStatus.SCREENING
    # The holder gone, the same call succeeds: nothing was left half done.
    allocation = services.randomize(Subject.objects.get(pk=subject.pk), staff)
    assert allocation.slot.sequence == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_randomize_page_says_the_service_is_busy(client, eligible, settings):
    subject, staff = eligible
    settings.RANDOMIZATION_LOCK_TIMEOUT = 1
    client.force_login(staff)
    url = reverse("randomization:randomize", args=[subject.subject_identifier])
    stratum = client.get(url).context["preview"].stratum
    with another_connection_holding_every_stratum():
        response = client.post(url, {"stratum": stratum, "confirm": "on"})
    assert response.status_code == 200
    assert "The randomization service is busy" in response.text
    assert "Try again in a moment" in response.text
    assert not Allocation.objects.exists()
    response = client.post(url, {"stratum": stratum, "confirm": "on"})
    assert response.status_code == 302 and Allocation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_lock_timeout_is_local_to_the_randomization_transaction(eligible, settings):
    subject, staff = eligible
    settings.RANDOMIZATION_LOCK_TIMEOUT = 1
    services.randomize(subject, staff)
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"  # other work on this connection waits as before


# --- statement_timeout: the web process only ------------------------------------------------------


def _run(*args: str, **env) -> str:
    """Run ``python *args`` in a new process, as a server or an operator would; its output."""
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "edc.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


SHOW = (
    "from django.db import connection\n"
    "with connection.cursor() as c:\n"
    "    c.execute('SHOW statement_timeout'); print(c.fetchone()[0])\n"
)
SLEEP = (
    "from django.db import OperationalError, connection\n"
    "try:\n"
    "    with connection.cursor() as c: c.execute('SELECT pg_sleep(5)')\n"
    "    print('finished')\n"
    "except OperationalError as exc:\n"
    "    print('cancelled', exc.__cause__.sqlstate)\n"
)


@pytest.mark.postgres
def test_the_web_process_has_a_statement_timeout_and_workers_do_not():
    # gunicorn (or any WSGI server) imports edc.wsgi, which marks the process as a web process.
    web = _run("-c", "import edc.wsgi\n" + SHOW)
    assert web == "30s"  # WEB_STATEMENT_TIMEOUT's default
    assert _run("-c", "import edc.wsgi\n" + SHOW, WEB_STATEMENT_TIMEOUT="2") == "2s"
    # Management commands, migrations and the Celery worker run long statements legitimately.
    assert _run("manage.py", "shell", "--verbosity", "0", "--command", SHOW) == "0"
    worker = _run("-c", "from edc.celery import app\nimport django\ndjango.setup()\n" + SHOW)
    assert worker == "0"


@pytest.mark.postgres
def test_a_web_statement_longer_than_the_timeout_is_cancelled():
    started = time.monotonic()
    out = _run("-c", "import edc.wsgi\n" + SLEEP, WEB_STATEMENT_TIMEOUT="1")
    assert out == "cancelled 57014"  # query_canceled, after 1 s instead of 5
    assert time.monotonic() - started < 5 + 10


def slow_view(request):
    """A request whose statement the database cancels (statement_timeout of 100 ms)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '100ms'")
        cursor.execute("SELECT pg_sleep(2)")
    return HttpResponse("never")


urlpatterns = [
    path("slow/", slow_view),
    path("api/v1/slow/", slow_view),
    *edc_urls.urlpatterns,
]


@pytest.mark.postgres
@pytest.mark.urls("tests.test_timeouts")
def test_a_cancelled_statement_is_a_503_with_a_sentence(client, coordinator):
    client.force_login(coordinator)
    page = client.get("/slow/")
    assert page.status_code == 503 and page["Retry-After"] == "5"
    assert "The server is busy" in page.text and "Try again in a moment" in page.text
    api = client.get("/api/v1/slow/")
    assert api.status_code == 503
    assert "Try again in a moment" in api.json()["detail"]


# --- idle sessions --------------------------------------------------------------------------------


def test_a_session_ends_after_30_idle_minutes_and_activity_moves_the_timer(client, coordinator):
    assert django_settings.SESSION_COOKIE_AGE == 30 * 60
    client.force_login(coordinator)
    page = reverse("subjects:list")
    start = timezone.now()

    def at(minutes):
        return mock.patch(
            "django.utils.timezone.now", return_value=start + timedelta(minutes=minutes)
        )

    for minutes in (29, 58, 87):  # a request every 29 minutes keeps the session alive
        with at(minutes):
            assert client.get(page).status_code == 200, minutes
    # The expiry moves at most once a minute: not a database write on every request.
    with at(87.5), CaptureQueriesContext(connection) as captured:
        assert client.get(page).status_code == 200
    assert not [q for q in captured.captured_queries if "UPDATE" in q["sql"]]
    with at(87 + 31):  # 31 idle minutes
        response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
