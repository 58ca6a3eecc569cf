"""A database statement cancelled for taking too long, as a page (or API answer) with a sentence.

The web process runs with ``statement_timeout`` (``WEB_STATEMENT_TIMEOUT``) and randomization with
``lock_timeout`` (``RANDOMIZATION_LOCK_TIMEOUT``): when PostgreSQL cancels a statement, the user
gets a 503 "busy, try again in a moment", never a 500 or a hung worker.
"""

from __future__ import annotations

from django.db import OperationalError
from django.http import HttpResponse, JsonResponse
from django.template import engines

# PostgreSQL error codes: query_canceled (statement_timeout), lock_not_available (lock_timeout).
TIMEOUT_SQLSTATES = {"57014", "55P03"}
BUSY = "The server is busy and could not answer in time: nothing was saved. Try again in a moment."
# Like the 500 page: no request context (no user, no further query on a busy database).
PAGE = """{% extends "base.html" %}{% block title %}Server busy{% endblock %}
{% block content %}<h1>The server is busy</h1>
<div class="card"><p>{{ message }}</p>
<div class="actions">
<a class="button" href="{% url 'subjects:list' %}">Back to the subjects list</a>
</div></div>{% endblock %}"""


def is_database_timeout(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) is a statement or lock timeout of PostgreSQL."""
    while exc is not None:
        if getattr(exc, "sqlstate", None) in TIMEOUT_SQLSTATES:
            return True
        exc = exc.__cause__
    return False


class DatabaseTimeoutMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not (isinstance(exception, OperationalError) and is_database_timeout(exception)):
            return None
        headers = {"Retry-After": "5"}
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": BUSY}, status=503, headers=headers)
        page = engines["django"].from_string(PAGE).render({"message": BUSY})
        return HttpResponse(page, status=503, headers=headers)
