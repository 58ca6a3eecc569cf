"""A database that is busy or gone, as a 503 page (or API answer) with a sentence, never a 500.

A cancelled statement (``WEB_STATEMENT_TIMEOUT``, ``RANDOMIZATION_LOCK_TIMEOUT``) answers
"busy, try again"; a lost or refused connection "the database is unavailable", and Django closes
the broken connection so the next request connects afresh. ``server_error`` and
``bad_request`` answer the same for what the middlewares around this one raise.
"""

from __future__ import annotations

import logging
import sys

from django.contrib.sessions.exceptions import SessionInterrupted
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import engines
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import server_error as django_server_error

logger = logging.getLogger(__name__)

# PostgreSQL error codes: query_canceled (statement_timeout), lock_not_available (lock_timeout).
TIMEOUT_SQLSTATES = {"57014", "55P03"}
# The server ended or refused the session: admin_shutdown (pg_terminate_backend, a fast shutdown),
# crash_shutdown, cannot_connect_now (starting up, in recovery), too_many_connections; and the
# whole class 08, connection exceptions.
UNAVAILABLE_SQLSTATES = {"57P01", "57P02", "57P03", "53300"}
BUSY = "The server is busy and could not answer in time: nothing was saved. Try again in a moment."
UNAVAILABLE = "The database is unavailable: try again in a moment."
# A write may have been committed just before the connection went: say so, never "nothing saved".
UNAVAILABLE_WRITING = (
    f"{UNAVAILABLE} If you were saving, check whether your change was recorded before you enter "
    "it again."
)
SESSION_ENDED = (
    "Your session was ended while this request ran (you logged out elsewhere, or your account "
    "was locked or deactivated). If you were saving, log in and check whether your change was "
    "recorded before you enter it again."
)
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
RETRY_AFTER = "5"  # seconds
# Like the 500 page: no request context (no user, no further query on a busy or lost database).
PAGE = """{% extends "base.html" %}{% block title %}{{ title }}{% endblock %}
{% block content %}<h1>{{ title }}</h1>
<div class="card"><p>{{ message }}</p>
<div class="actions">
<a class="button" href="{% url 'subjects:list' %}">Back to the subjects list</a>
</div></div>{% endblock %}"""


def _chain(exc: BaseException | None):
    """``exc`` and what it wraps or was raised while handling (Django's session middleware turns
    a failed save into "session interrupted", a 400, raised while handling the database error)."""
    while exc is not None:
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


def _database_error(exc: BaseException) -> BaseException | None:
    return next((e for e in _chain(exc) if isinstance(e, (OperationalError, InterfaceError))), None)


def is_database_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a statement or lock timeout of PostgreSQL."""
    return any(getattr(e, "sqlstate", None) in TIMEOUT_SQLSTATES for e in _chain(exc))


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the request's PostgreSQL connection is lost or could not be made.

    Django wraps psycopg's error (``__cause__``). The server's refusals carry an SQLSTATE
    (``UNAVAILABLE_SQLSTATES``, class 08); psycopg's own errors of a connection that failed, broke
    or is closed carry none (the server never answered). Any other SQLSTATE (a deadlock, a
    timeout) is not this; nor is an error of a driver without SQLSTATEs (SQLite's)."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    states = [e.sqlstate for e in _chain(exc) if hasattr(e, "sqlstate")]
    if not states:
        return False
    return all(s is None or s in UNAVAILABLE_SQLSTATES or s.startswith("08") for s in states)


def _answer(request, status_title: str, message: str) -> HttpResponse:
    headers = {"Retry-After": RETRY_AFTER}
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=503, headers=headers)
    page = engines["django"].from_string(PAGE).render({"title": status_title, "message": message})
    return HttpResponse(page, status=503, headers=headers)


def database_trouble_response(request, exception: BaseException) -> HttpResponse | None:
    """The 503 for a database timeout or a lost database (``exception`` or what it came from);
    None for any other exception."""
    exception = _database_error(exception)
    if exception is None:
        return None
    if isinstance(exception, OperationalError) and is_database_timeout(exception):
        return _answer(request, "The server is busy", BUSY)
    if is_database_unavailable(exception):
        logger.error(
            "Database unavailable during %s %s: %s: %s",
            request.method,
            request.path,
            type(exception).__name__,
            str(exception).strip(),
        )
        writing = request.method not in SAFE_METHODS
        return _answer(
            request, "The database is unavailable", UNAVAILABLE_WRITING if writing else UNAVAILABLE
        )
    return None


class DatabaseTroubleMiddleware:
    """A view's database timeout or lost database connection: the 503 with its sentence."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        return database_trouble_response(request, exception)


def server_error(request):
    """The 500 handler (``handler500``): a database lost outside the view (in a middleware) is
    the same 503 as in it; anything else is Django's 500 page."""
    exception = sys.exc_info()[1]
    if exception is not None:
        response = database_trouble_response(request, exception)
        if response is not None:
            return response
    return django_server_error(request)


def bad_request(request, exception):
    """The 400 handler (``handler400``): the session middleware reports a session it could not
    save as "interrupted" (a 400) when the database was lost: the same 503. A session ended
    while its request ran (logged out in another tab, the account locked or deactivated) is
    said as such: the view may have saved. Anything else is Django's 400 page."""
    response = database_trouble_response(request, exception)
    if response is not None:
        return response
    if isinstance(exception, SessionInterrupted):
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": SESSION_ENDED}, status=400)
        context = {"title": "Your session has ended", "message": SESSION_ENDED}
        return HttpResponse(engines["django"].from_string(PAGE).render(context), status=400)
    return django_bad_request(request, exception)
