"""Streamed exports (issue 20, item 12): a failure mid-stream is seen as a failed transfer by a
real HTTP client, under both servers, and is logged on the server; the COPY CSV works under
``DEBUG=1`` and gives the same bytes as without it.

The servers are real processes on a port (``tests/stream_fault_server.py``): Django's runserver
(what ``make demo`` serves; here with ``DEBUG=1``) and gunicorn with ``deploy/gunicorn.conf.py``.
A request with ``X-Inject-Fault: 2`` gets its export's first two chunks, then an error, as when
the database connection is lost mid-export. The client reads with HTTP/1.1 (``http.client``:
chunked from gunicorn, close-delimited from runserver) and with HTTP/1.0 (close-delimited from
both: what nginx asks by default), and must get an error, never a clean end.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events import services as ae_services
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from exports import copy_csv
from randomization.arms import Arm
from subjects import services as subject_services

from .builders import make_subject, make_subject_in_arm, site_today
from .stream_fault_server import FAULT_HEADER, MESSAGE

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).with_name("stream_fault_server.py")
# Every kind of streamed export: the CSV from COPY and from Python, the feeds' CSV, ODM,
# Dataset-JSON as JSON and as NDJSON.
EXPORTS = [
    "/api/v1/adverse-events/?format=csv",
    "/api/v1/subjects/?format=csv",
    "/api/v1/audit-trail/?format=csv",
    "/api/v1/deletions/?format=csv&since=2000-01-01T00:00:00Z",
    "/api/v1/exports/odm/",
    "/api/v1/exports/dataset-json/dm/",
    "/api/v1/exports/dataset-json/ae.ndjson",
]


def add_study(site, coordinator) -> None:
    """Two randomized subjects with an adverse event each, one in screening, and one deleted
    (registered in error): every export has rows."""
    load_starter_terms()
    for _ in range(2):
        subject = make_subject_in_arm(Arm.B, site, by=coordinator)
        ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=CtcaeTerm.objects.get(term="Hypertension"),
            grade=2,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            causality={"sorafenib": {"causality": "possible", "action_taken": "reduced"}},
        )
    make_subject(site, by=coordinator)
    mistake = make_subject(site, by=coordinator)
    subject_services.delete_subject(mistake, user=coordinator, reason="Registered in error")


@pytest.fixture
def study_data(site, coordinator):
    add_study(site, coordinator)


def api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(user)}")
    return client


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


# --- DEBUG=1: the COPY CSV works, byte for byte as without DEBUG ---------------------------------


def csv_of(client, path, **query) -> bytes:
    response = client.get(path, {"format": "csv", **query})
    assert response.status_code == 200 and response.streaming, response
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_copy_csv_is_the_same_under_debug(study_data, data_manager, settings, monkeypatch):
    client = api_client(data_manager)
    pulls = [
        ("/api/v1/adverse-events/", {}),
        ("/api/v1/adverse-events/", {"site": "101", "ordering": "-grade,term"}),
        ("/api/v1/adverse-events/", {"updated_since": "2000-01-01T00:00:00Z", "grade": "2"}),
        ("/api/v1/sites/", {}),
    ]
    settings.DEBUG = False
    plain = [csv_of(client, path, **query) for path, query in pulls]
    settings.DEBUG = True  # Django's CursorDebugWrapper: its copy() takes no parameters
    with CaptureQueriesContext(connection) as queries:
        debug = [csv_of(client, path, **query) for path, query in pulls]
    assert debug == plain
    copies = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY")]
    assert len(copies) == len(pulls) and "'101'" in copies[1]  # logged with its parameters
    monkeypatch.setattr(copy_csv, "ENABLED", False)  # the Python path
    assert [csv_of(client, path, **query) for path, query in pulls] == plain
    assert all(text.count(b"\n") > 1 for text in plain[:3])  # rows, not the header alone


# --- a failure mid-stream, through a real server and a real client ------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database, for the server process."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}{port}/{quote(db['NAME'], safe='')}"


class Server:
    def __init__(self, kind: str, port: int, log: Path):
        self.kind, self.port, self.log_path = kind, port, log

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module", params=["runserver", "gunicorn"])
def server(request, django_db_setup, tmp_path_factory):
    """runserver with DEBUG=1 (the issue's case), or gunicorn with the committed config and
    one worker, on the test database."""
    kind, port = request.param, _free_port()
    env = {k: v for k, v in os.environ.items() if k != "DEBUG"}
    env["DATABASE_URL"] = _database_url()
    if kind == "runserver":
        env["DEBUG"] = "1"
        args = [f"127.0.0.1:{port}"]
    else:
        env.update(GUNICORN_BIND=f"127.0.0.1:{port}", GUNICORN_WORKERS="1")
        args = []
    log = tmp_path_factory.mktemp(kind) / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(LAUNCHER), kind, *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Server(kind, port, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, running.log
                assert time.monotonic() < deadline, running.log
                time.sleep(0.2)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)


def get_http11(server: Server, path: str, token: str, *, fault: int | None):
    """(status, the body or the error reading it), with ``http.client`` (HTTP/1.1); ``fault``:
    the chunks given before the injected failure (None: none)."""
    headers = {"Authorization": f"Token {token}"}
    if fault is not None:
        headers[FAULT_HEADER] = str(fault)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        try:
            return response.status, response.read()
        except (http.client.IncompleteRead, ConnectionError) as exc:
            return response.status, exc
    finally:
        conn.close()


def get_http10(server: Server, path: str, token: str, *, fault: int | None):
    """(the bytes received, the error that ended them or None), as an HTTP/1.0 client reads a
    body without Content-Length: until the connection ends."""
    lines = [f"GET {path} HTTP/1.0", "Host: 127.0.0.1", f"Authorization: Token {token}"]
    if fault is not None:
        lines.append(f"{FAULT_HEADER}: {fault}")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
        except ConnectionError as exc:
            return received, exc
        return received, None


@pytest.mark.django_db(transaction=True)
def test_a_streamed_export_failing_midway_is_a_failed_transfer_for_the_client(
    server, site, coordinator, data_manager
):
    add_study(site, coordinator)
    token = token_of(data_manager)
    for path in EXPORTS:
        # Without a fault the same export ends cleanly, for both clients.
        status, body = get_http11(server, path, token, fault=None)
        assert status == 200 and isinstance(body, bytes) and len(body) > 100, (path, body)
        received, error = get_http10(server, path, token, fault=None)
        assert error is None and received.startswith(b"HTTP/1.") and received.endswith(body[-16:])

        status, outcome = get_http11(server, path, token, fault=2)
        assert status == 200 and isinstance(outcome, Exception), (server.kind, path, outcome)
        received, error = get_http10(server, path, token, fault=2)
        assert isinstance(error, ConnectionError), (server.kind, path, received[-300:])
    # Failing before its first chunk, an export is a 500 (the server can still say so).
    status, body = get_http11(server, "/api/v1/sites/?format=csv", token, fault=0)
    assert status == 500 and isinstance(body, bytes), body
    # Logged on the server, each failure with its request, its user and its traceback.
    logged = [
        f"The streamed response to GET {path.partition('?')[0]} (user {data_manager})"
        for path in EXPORTS
    ]
    deadline = time.monotonic() + 10
    while "failed after 0 bytes" not in (log := server.log) and time.monotonic() < deadline:
        time.sleep(0.2)
    for line in logged:
        assert log.count(line) == 2, (line, log[-3000:])
    assert log.count(f"FaultInjected: {MESSAGE}") >= 2 * len(EXPORTS)
    assert "the connection was reset: the client sees the transfer fail" in log
    assert (
        f"GET /api/v1/sites/ (user {data_manager}) failed after 0 bytes; nothing was sent: "
        "the server answers 500." in log
    )
