"""Production configuration (issue 12, additions): ``check --deploy`` is clean with
EDC_PRODUCTION=1; gunicorn serves the app with its committed config, HTTPS-only with HSTS and the
security headers; ``/healthz`` for the load balancer; the password validators on every path that
sets a password."""

import getpass
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.utils import ConnectionHandler
from django.urls import reverse

from edc import health

from .builders import PASSWORD, make_user

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION_ENV = {
    "EDC_PRODUCTION": "1",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "edc.example.org",
}


def manage(*args, **env):
    # Not the development switches, nor the one the browser tests set for Playwright's event
    # loop (DJANGO_ALLOW_ASYNC_UNSAFE): a deployment never has them.
    dev_only = ("DEBUG", "SECURE_COOKIES", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in dev_only}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_check_deploy_is_clean_with_the_production_settings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout
    # The switch is what makes it clean: the development defaults are not deployable.
    development = manage("check", "--deploy", "--fail-level", "WARNING")
    assert development.returncode != 0
    assert "security.W004" in development.stderr  # no HSTS


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SECRET_KEY": ""}, "needs SECRET_KEY set"),
        ({"ALLOWED_HOSTS": ""}, "needs ALLOWED_HOSTS set"),
        ({"DEBUG": "1"}, "refuses DEBUG=1"),
    ],
)
def test_production_refuses_a_configuration_that_is_not_safe(env, message):
    result = manage("check", **{**PRODUCTION_ENV, **env})
    assert result.returncode != 0
    assert message in result.stderr


# --- gunicorn with deploy/gunicorn.conf.py, as in production ------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url, **headers):
    """(status, headers, body) without following redirects."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers), timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read().decode()


@pytest.fixture
def gunicorn():
    """One app server: gunicorn with the committed config, EDC_PRODUCTION=1, one worker."""
    port = _free_port()
    env = {
        **os.environ,
        **PRODUCTION_ENV,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py"]
        + ["edc.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                _get(base + "/healthz")
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.postgres
def test_gunicorn_serves_https_only_with_hsts_and_secure_headers(gunicorn):
    # The load balancer probes by address, over plain HTTP.
    status, headers, body = _get(gunicorn + "/healthz", Host="10.0.0.7")
    assert status == 200 and json.loads(body)["status"] == "ok"
    assert "no-cache" in headers["Cache-Control"]

    status, headers, _ = _get(gunicorn + "/accounts/login/", Host="edc.example.org")
    assert status == 301
    assert headers["Location"] == "https://edc.example.org/accounts/login/"

    status, headers, body = _get(
        gunicorn + "/accounts/login/", Host="edc.example.org", **{"X-Forwarded-Proto": "https"}
    )
    assert status == 200 and "Log in" in body
    assert headers["Strict-Transport-Security"] == ("max-age=31536000; includeSubDomains; preload")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    cookie = headers["Set-Cookie"]
    assert "csrftoken=" in cookie and "Secure" in cookie

    status, _, _ = _get(gunicorn + "/accounts/login/", Host="attacker.example")
    assert status == 400  # a host name not in ALLOWED_HOSTS


# --- /healthz -------------------------------------------------------------------------------------


@pytest.mark.redis
@pytest.mark.django_db
def test_healthz_is_200_when_database_and_broker_answer(client, settings):
    settings.CELERY_BROKER_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    response = client.get("/healthz", HTTP_HOST="10.0.0.7")  # no login, any host name
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"] and "no-store" in response["Cache-Control"]
    assert "sessionid" not in response.cookies


@pytest.mark.django_db
def test_healthz_without_a_broker_reports_it_not_used(client, settings):
    settings.CELERY_BROKER_URL = ""
    assert client.get("/healthz").json() == {
        "status": "ok",
        "database": "ok",
        "broker": "not used",
    }


@pytest.mark.django_db
def test_healthz_is_503_naming_the_broker_when_it_is_down(client, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    started = time.monotonic()
    response = client.get("/healthz")
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["down"] == ["broker"]
    assert body["database"] == "ok" and body["broker"] != "ok"


@pytest.mark.django_db
def test_healthz_is_503_naming_the_database_when_it_is_down(client, settings, monkeypatch):
    unreachable = {**connection.settings_dict, "HOST": "127.0.0.1", "PORT": "1"}
    if connection.vendor == "sqlite":
        unreachable = {**connection.settings_dict, "NAME": "/nonexistent/dir/db.sqlite3"}
    monkeypatch.setattr(health, "connections", ConnectionHandler({"default": unreachable}))
    settings.CELERY_BROKER_URL = ""
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["down"] == ["database"] and body["database"] != "ok"


def test_healthz_takes_only_get(client):
    assert client.post("/healthz").status_code == 405


# --- the password validators on every path that sets a password ----------------------------------

WEAK = "12345678"  # numeric and common


@pytest.fixture
def root(django_user_model):
    return django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)


@pytest.mark.django_db
def test_the_admin_refuses_a_weak_password_for_a_new_user(client, root, django_user_model):
    client.force_login(root)
    response = client.post(
        reverse("admin:auth_user_add"),
        {"username": "newcomer", "usable_password": "true", "password1": WEAK, "password2": WEAK},
    )
    assert response.status_code == 200
    assert "This password is too common." in response.text
    assert not django_user_model.objects.filter(username="newcomer").exists()


@pytest.mark.django_db
def test_the_admin_refuses_a_weak_password_change(client, root):
    user = make_user(username="nurse")
    client.force_login(root)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"usable_password": "true", "password1": WEAK, "password2": WEAK},
    )
    assert response.status_code == 200 and "This password is too common." in response.text
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_changepassword_refuses_a_weak_password():
    user = make_user(username="nurse")
    with (
        mock.patch.object(getpass, "getpass", return_value=WEAK),
        pytest.raises(CommandError, match="Aborting password change"),
    ):
        call_command("changepassword", "nurse", stdout=io.StringIO())
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_in_production_a_weak_password_set_by_code_is_not_saved(settings):
    user = make_user(username="nurse")
    settings.PRODUCTION = True
    user.set_password(WEAK)  # a script or a shell, past every form
    with pytest.raises(ValidationError, match="too common"):
        user.save()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
    user.set_password("a long and unusual passphrase")
    user.save()
