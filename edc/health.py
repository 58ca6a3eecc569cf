"""``/healthz`` for the load balancer: is this app server able to serve?

200 ``{"status": "ok", "database": "ok", "broker": "ok"}`` when the database answers a query and
the Celery broker accepts a connection; 503 with ``"status": "unavailable"``, ``"down"`` naming
what is not reachable and a sentence per failure. No login, never cached, no session. Answered by a
middleware placed first, so the probe needs neither a host name from ALLOWED_HOSTS (load
balancers probe by address) nor HTTPS. Without ``CELERY_BROKER_URL`` (tasks run in-process) the
broker is reported "not used".
"""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.utils.cache import add_never_cache_headers

PATH = "/healthz"
BROKER_TIMEOUT = 2  # seconds


def check_database(alias: str = "default") -> str | None:
    """None when the database answers ``SELECT 1``; else why not."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure to reach it is "down"
        connections[alias].close()  # the next probe reconnects
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def check_broker() -> str | None:
    """None when the Celery broker accepts a connection (or none is configured); else why not."""
    if not settings.CELERY_BROKER_URL:
        return None
    from edc.celery import app

    try:
        with app.connection_for_write(settings.CELERY_BROKER_URL) as conn:
            conn.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def health() -> tuple[int, dict]:
    problems = {"database": check_database(), "broker": check_broker()}
    down = [name for name, problem in problems.items() if problem]
    body = {
        "status": "unavailable" if down else "ok",
        "database": problems["database"] or "ok",
        "broker": problems["broker"] or ("ok" if settings.CELERY_BROKER_URL else "not used"),
    }
    if down:
        body["down"] = down
    return (503 if down else 200), body


class HealthCheckMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.rstrip("/") != PATH:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return JsonResponse({"detail": "Use GET."}, status=405, headers={"Allow": "GET, HEAD"})
        status, body = health()
        response = JsonResponse(body, status=status)
        add_never_cache_headers(response)
        return response
