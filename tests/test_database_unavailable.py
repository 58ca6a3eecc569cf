"""A database connection lost in the middle of a request: a 503 with a sentence, and the next
request works.

The connection is really lost: just before the request's first query of a table, another
connection ends its server process (``pg_terminate_backend``, what an administrator, a restart or
a failover does). Requests go through Django's WSGI handler as a server makes them, closing the
response (the test client keeps the test's connection across requests, so it could not show that
the broken connection is replaced).
"""

from __future__ import annotations

import io
import sys
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.sessions import ACTIVE_KEY
from core.roles import Role
from edc.middleware import UNAVAILABLE, UNAVAILABLE_WRITING, is_database_unavailable
from subjects.models import Subject

from .builders import make_subject, make_user
from .builders.forms import post_forms

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
CSRF = "k" * 32  # a CSRF secret, as cookie and as form field (the WSGI handler checks it)


def serve(method: str, path: str, *, cookie: str = "", token: str = "", form=None):
    """(status, headers, body) of one request through the WSGI handler, the response closed."""
    body = urlencode(form or {}, doseq=True).encode()
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "testserver",
        "HTTP_COOKIE": cookie,
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.url_scheme": "http",
    }
    if token:
        environ["HTTP_AUTHORIZATION"] = f"Token {token}"
    started = {}

    def start_response(status, headers, exc_info=None):
        started.update(status=int(status.split()[0]), headers=dict(headers))

    response = WSGIHandler()(environ, start_response)
    try:
        content = b"".join(response).decode()
    finally:
        response.close()  # request_finished: Django closes a connection that is no longer usable
    return started["status"], started["headers"], content


@contextmanager
def connection_lost_at(table: str, statement: str = ""):
    """The request's connection is ended by the server just before its first query of ``table``
    (starting with ``statement``, e.g. "UPDATE"): the session and the user were read, the request
    is under way."""
    ended = []

    def end_first(execute, sql, params, many, context):
        if not ended and f'"{table}"' in sql and sql.startswith(statement):
            pid = context["connection"].connection.info.backend_pid
            other = connections.create_connection("default")
            try:
                with other.cursor() as cursor:  # waits until the process has ended
                    cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [pid])
            finally:
                other.close()
            ended.append(pid)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(end_first):
        yield ended
    assert ended, f"no query of {table}"


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def idle_for_a_while(cookie: str) -> None:
    """The session's expiry is moved on (saved) by the next request (``IdleSessionMiddleware``)."""
    session = SessionStore(session_key=cookie.split("sessionid=")[1].split(";")[0])
    session[ACTIVE_KEY] = 0
    session.save()


def test_a_site_page_whose_connection_is_lost_is_a_503_and_the_next_request_works(site):
    coordinator = make_user(Role.SITE_STAFF, site)
    make_subject(site, by=coordinator)
    cookie = session_cookie(coordinator)
    with connection_lost_at("subjects_subject"):
        status, headers, page = serve("GET", "/subjects/", cookie=cookie)
    assert status == 503 and headers["Retry-After"] == "5"
    assert "The database is unavailable" in page and UNAVAILABLE in page
    assert "check whether your change was recorded" not in page  # nothing was being saved
    status, _, page = serve("GET", "/subjects/", cookie=cookie)
    assert status == 200 and "101-0001" in page


def test_a_save_whose_connection_is_lost_is_a_503_that_says_to_check_and_saves_nothing(site):
    coordinator = make_user(Role.SITE_STAFF, site)
    subject = make_subject(site, by=coordinator)
    cookie = f"{session_cookie(coordinator)}; csrftoken={CSRF}"
    url = f"/subjects/{subject.subject_identifier}/edit/"
    status, _, page = serve("GET", url, cookie=cookie)
    assert status == 200
    form = max(post_forms(page), key=lambda f: len(f.fields)).data()
    edit = form | {"csrfmiddlewaretoken": CSRF, "initials": "ZZ", "reason": "Initials were wrong"}
    assert subject.initials != "ZZ"
    with connection_lost_at("subjects_historicalsubject"):  # the audit row, after the update
        status, _, page = serve("POST", url, cookie=cookie, form=edit)
    assert status == 503 and UNAVAILABLE_WRITING in page
    saved = Subject.objects.get(pk=subject.pk)  # read on a fresh connection
    assert saved.initials == subject.initials  # the transaction died with the connection
    assert saved.history.count() == subject.history.count()
    status, _, page = serve("POST", url, cookie=cookie, form=edit)  # sent again: saved
    assert status == 302
    assert Subject.objects.get(pk=subject.pk).initials == "ZZ"


def test_a_connection_lost_as_the_session_is_saved_after_the_page_is_the_same_503(site):
    """The session is saved by a middleware as the response leaves, after the view: the 500
    handler gives the same answer."""
    coordinator = make_user(Role.SITE_STAFF, site)
    cookie = session_cookie(coordinator)
    idle_for_a_while(cookie)
    with connection_lost_at("django_session", "UPDATE"):
        status, _, page = serve("GET", "/subjects/", cookie=cookie)
    assert status == 503 and UNAVAILABLE in page
    status, _, page = serve("GET", "/subjects/", cookie=cookie)
    assert status == 200 and "Subjects" in page


def test_an_admin_page_whose_connection_is_lost_is_a_503_and_the_next_request_works(site):
    data_manager = make_user(Role.DATA_MANAGER, is_staff=True)
    make_subject(site, by=make_user(Role.SITE_STAFF, site))
    cookie = session_cookie(data_manager)
    with connection_lost_at("subjects_subject"):
        status, _, page = serve("GET", "/admin/subjects/subject/", cookie=cookie)
    assert status == 503 and UNAVAILABLE in page
    status, _, page = serve("GET", "/admin/subjects/subject/", cookie=cookie)
    assert status == 200 and "101-0001" in page


def test_an_api_request_whose_connection_is_lost_is_a_503_json_and_the_next_works(site):
    sponsor = make_user(Role.SPONSOR)
    make_subject(site, by=make_user(Role.SITE_STAFF, site))
    token = Token.objects.create(user=sponsor).key
    with connection_lost_at("subjects_subject"):
        status, headers, body = serve("GET", "/api/v1/subjects/", token=token)
    assert status == 503 and headers["Content-Type"] == "application/json"
    assert UNAVAILABLE in body and '"detail"' in body
    status, _, body = serve("GET", "/api/v1/subjects/", token=token)
    assert status == 200 and "101-0001" in body


def test_other_database_errors_are_not_called_unavailable():
    """A deadlock or a timeout has its SQLSTATE: not a lost connection."""
    from django.db import OperationalError

    class Deadlock(Exception):
        sqlstate = "40P01"

    class Lost(Exception):
        sqlstate = None

    for cause, lost in ((Deadlock(), False), (Lost(), True)):
        error = OperationalError("x")
        error.__cause__ = cause
        assert is_database_unavailable(error) is lost
    assert not is_database_unavailable(OperationalError("database is locked"))  # SQLite's
