"""The idle session (``accounts.sessions``), with the test client and a clock the test moves: any
timeout keeps an active user signed in, and a form posted after the session ended is neither
saved nor lost: the login page says so, and the same user, once logged in again, finds what
they typed back in the form, for them to submit; anyone else finds nothing.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.sessions import KEPT_KEY
from subjects.models import Subject

from .builders import PASSWORD

pytestmark = pytest.mark.django_db


class Clock:
    """The server's time (``django.utils.timezone.now``), moved on by the test."""

    def __init__(self):
        self.at = timezone.now()

    def __call__(self):
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@pytest.fixture
def clock():
    clock = Clock()
    with mock.patch("django.utils.timezone.now", side_effect=clock):
        yield clock


@pytest.fixture
def one_minute(settings):
    settings.SESSION_COOKIE_AGE = 60  # SESSION_IDLE_MINUTES=1


def signed_in(response) -> bool:
    return response.status_code == 200


def test_a_one_minute_timeout_keeps_an_active_user_and_ends_after_61_idle_seconds(
    client, coordinator, one_minute, clock
):
    client.force_login(coordinator)
    page = reverse("subjects:list")
    for _ in range(5):  # a request every 40 s, 200 s in all: signed in throughout
        clock.advance(40)
        assert signed_in(client.get(page)), clock.at
    clock.advance(61)
    response = client.get(page)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_the_status_check_is_no_activity_and_stay_signed_in_is(
    client, coordinator, one_minute, clock
):
    client.force_login(coordinator)
    clock.advance(50)
    status = client.get(reverse("session_status"))
    assert status.json() == {"seconds_left": 10, "warn_seconds": 15}
    kept = client.post(reverse("session_keep_alive"))
    assert kept.json()["seconds_left"] == 60
    clock.advance(50)  # 100 s after the login, 50 s after "Stay signed in"
    assert client.get(reverse("session_status")).json()["seconds_left"] == 10
    clock.advance(11)  # the status checks moved nothing on
    assert client.get(reverse("session_status")).status_code == 401
    assert client.post(reverse("session_keep_alive")).status_code == 401
    assert client.get(reverse("subjects:list")).status_code == 302


def test_pages_carry_the_timeout_and_no_clock(client, coordinator, one_minute, clock):
    """The page knows the session lasts at least ``idle - refresh`` more seconds and asks
    the status for the exact time before warning; two requests give the same page."""
    client.force_login(coordinator)
    clock.advance(30)
    page = client.get(reverse("subjects:list")).text
    assert 'data-idle-seconds="60" data-refresh-seconds="6" data-warn-seconds="15"' in page
    assert f'data-status-url="{reverse("session_status")}"' in page
    assert f'data-keep-alive-url="{reverse("session_keep_alive")}"' in page
    clock.advance(2.5)  # a page twice, with a different clock: the same page
    again = client.get(reverse("subjects:list")).text
    assert without_tokens(again) == without_tokens(page)


def without_tokens(page: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page)


# --- a form posted after the session ended ------------------------------------------------------


def registration(site) -> dict:
    return {
        "site": str(site.pk),
        "screening_number": "SCR-41",
        "screening_date": "2026-03-02",
        "date_of_birth": "1961-04-05",
        "sex": "F",
        "initials": "qd",
    }


@contextmanager
def typed_then_expired(client, user, clock):
    """``user`` opens the registration form, and their session ends before they submit it."""
    assert client.login(username=user.username, password=PASSWORD)
    form = client.get(reverse("subjects:register"))
    assert form.status_code == 200
    clock.advance(31 * 60)  # 30 minutes' idleness ends a session
    yield


def expired_post(client, site, **extra):
    return client.post(
        reverse("subjects:register"),
        {
            "csrfmiddlewaretoken": "x" * 32,
            "submission": str(uuid.uuid4()),
            **registration(site),
            **extra,
        },
        follow=True,
    )


def kept_input(page) -> dict | None:
    start = page.text.find('<script id="kept-input" type="application/json">')
    if start < 0:
        return None
    body = page.text[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def log_in(client, user, next_url):
    return client.post(
        f"{reverse('login')}?next={next_url}",
        {"username": user.username, "password": PASSWORD, "next": next_url},
        follow=True,
    )


def test_an_expired_post_says_so_and_gives_the_same_user_their_input_back(
    client, coordinator, site, clock
):
    with typed_then_expired(client, coordinator, clock):
        login_page = expired_post(client, site)
    url = reverse("subjects:register")
    assert login_page.redirect_chain[-1][0] == f"{reverse('login')}?next={url}"
    assert "Your session ended after 30 minutes of inactivity: nothing was saved" in login_page.text
    assert "the form will show what you typed" in login_page.text
    assert not Subject.objects.exists()

    clock.advance(120)
    form = log_in(client, coordinator, url)
    assert form.redirect_chain[-1][0] == url
    assert form.status_code == 200
    kept = kept_input(form)
    assert kept["data"] == {name: [value] for name, value in registration(site).items()}
    assert "nothing has been saved yet" in kept["message"]
    assert not Subject.objects.exists()  # put back, not saved

    # The form itself is as ever (fresh tokens): the user submits, the view validates and saves.
    assert 'name="submission"' in form.text
    again = client.get(url)
    assert kept_input(again) is None  # shown once
    saved = client.post(url, {"submission": str(uuid.uuid4()), **registration(site)}, follow=True)
    assert "Subject 101-0001 registered" in saved.text
    assert Subject.objects.get().initials == "QD"


def test_another_user_logging_in_on_that_browser_finds_nothing(
    client, coordinator, investigator, site, clock
):
    with typed_then_expired(client, coordinator, clock):
        expired_post(client, site)
    url = reverse("subjects:register")
    form = log_in(client, investigator, url)
    assert form.redirect_chain[-1][0] == url
    assert kept_input(form) is None
    assert "SCR-41" not in form.text
    assert KEPT_KEY not in client.session
    # Nor does the first user after them: the input went with the other user's login.
    client.post(reverse("logout"))
    assert kept_input(log_in(client, coordinator, url)) is None


def test_no_password_token_or_signature_is_kept(client, coordinator, site, clock):
    with typed_then_expired(client, coordinator, clock):
        expired_post(client, site, password="my-e-signature", new_password1="x")
    url = reverse("subjects:register")
    kept = kept_input(log_in(client, coordinator, url))
    assert set(kept["data"]) == set(registration(site))


def test_a_signature_alone_is_not_kept_and_the_login_page_says_nothing_was_saved(
    client, investigator, subject, clock
):
    url = reverse("eligibility:sign", args=[subject.subject_identifier])
    assert client.login(username=investigator.username, password=PASSWORD)
    client.get(reverse("subjects:list"))
    clock.advance(31 * 60)
    login_page = client.post(url, {"password": PASSWORD}, follow=True)
    assert "nothing was saved. Log in to go on." in login_page.text
    assert KEPT_KEY not in client.session


def test_the_kept_input_is_shown_only_on_its_own_url_and_for_an_hour(
    client, coordinator, site, clock
):
    with typed_then_expired(client, coordinator, clock):
        expired_post(client, site)
    clock.advance(20 * 60)
    elsewhere = log_in(client, coordinator, reverse("subjects:list"))
    assert kept_input(elsewhere) is None
    assert KEPT_KEY in client.session  # waiting for its own URL...
    clock.advance(20 * 60)
    assert kept_input(client.get(reverse("subjects:list"))) is None
    clock.advance(21 * 60)  # 61 minutes after the post
    assert kept_input(client.get(reverse("subjects:register"))) is None  # ...but too old
    assert KEPT_KEY not in client.session


def test_a_browser_that_dropped_the_expired_cookie_gets_the_input_back_too(
    client, coordinator, site, clock
):
    """A browser deletes the session cookie when it expires (its max-age is the timeout): the
    signed "who was signed in here" cookie still names the user."""
    from django.conf import settings

    with typed_then_expired(client, coordinator, clock):
        del client.cookies[settings.SESSION_COOKIE_NAME]
        login_page = expired_post(client, site)
    assert "the form will show what you typed" in login_page.text
    url = reverse("subjects:register")
    assert kept_input(log_in(client, coordinator, url))["data"]["screening_number"] == ["SCR-41"]


def test_a_post_from_a_browser_never_signed_in_gets_the_plain_login_page(client, site):
    page = expired_post(client, site)
    assert page.redirect_chain[-1][0].startswith(reverse("login"))
    assert "Your session ended" not in page.text
    assert KEPT_KEY not in client.session
