"""The idle session in a real browser, with a 1-minute timeout and both clocks moved by the test
(the server's ``timezone.now`` and the page's timers, Playwright's clock): the page warns before
the end and "Stay signed in" moves it on; a form submitted after the end comes back filled in
after the login, and is saved only when the user submits it.
"""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from subjects.models import Subject

from .builders import PASSWORD
from .builders.browser import axe_violations, log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


class Clock:
    """The server's time, moved on by the test."""

    def __init__(self):
        self.at = timezone.now()

    def __call__(self):
        return self.at


@pytest.fixture
def both_clocks(page, settings):
    """``advance(seconds)`` moves the server's clock and the page's timers together."""
    settings.SESSION_COOKIE_AGE = 60  # SESSION_IDLE_MINUTES=1: warned 15 s before the end
    server = Clock()
    page.clock.install()

    def advance(seconds: float) -> None:
        server.at += timedelta(seconds=seconds)
        page.clock.fast_forward(int(seconds * 1000))

    with mock.patch("django.utils.timezone.now", side_effect=server):
        yield advance


def test_the_warning_comes_before_the_end_and_stay_signed_in_extends_the_session(
    page, site, coordinator, both_clocks
):
    log_in(page, coordinator.username, PASSWORD)
    page.goto(reverse("subjects:register"))
    warning = page.locator("#session-warning")
    expect(warning).to_be_hidden()

    both_clocks(40)  # 20 s left: the page asks, and waits
    expect(warning).to_have_attribute("data-seconds-left", "20")
    expect(warning).to_be_hidden()
    both_clocks(6)  # 14 s left
    expect(warning).to_contain_text("You will be logged out in 14 seconds")
    expect(warning).to_have_attribute("role", "alert")
    button = warning.get_by_role("button", name="Stay signed in")
    expect(button).to_be_focused()  # the user was not typing: a key press away
    assert axe_violations(page) == []

    page.keyboard.press("Enter")
    expect(warning).to_be_hidden()
    both_clocks(50)  # 96 s after the login, 50 s after "Stay signed in"
    page.goto(reverse("subjects:list"))
    expect(page.locator("h1")).to_have_text("Subjects")  # still signed in

    both_clocks(61)  # idle for 61 s: logged out
    page.goto(reverse("subjects:list"))
    assert "/accounts/login/" in page.url


def test_a_form_submitted_after_the_end_is_put_back_after_the_login(
    page, site, coordinator, both_clocks
):
    log_in(page, coordinator.username, PASSWORD)
    page.goto(reverse("subjects:register"))
    page.fill("#id_screening_number", "SCR-0077")
    page.fill("#id_date_of_birth", "1958-11-23")
    page.select_option("#id_sex", "M")
    page.fill("#id_initials", "tk")

    both_clocks(61)  # the user typed for over a minute without a request: the session ended
    warning = page.locator("#session-warning")
    expect(warning).to_contain_text("Your session has ended because of inactivity")
    page.click("main button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("nothing was saved")
    assert "/accounts/login/" in page.url
    assert not Subject.objects.exists()

    page.fill("#id_username", coordinator.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{reverse('subjects:register')}")
    expect(page.locator("main .messages")).to_contain_text("nothing has been saved yet")
    expect(page.locator("#id_screening_number")).to_have_value("SCR-0077")
    expect(page.locator("#id_date_of_birth")).to_have_value("1958-11-23")
    expect(page.locator("#id_sex")).to_have_value("M")
    expect(page.locator("#id_initials")).to_have_value("tk")
    assert not Subject.objects.exists()  # put back, not saved
    assert axe_violations(page) == []

    page.click("main button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Subject 101-0001 registered.")
    assert Subject.objects.get().screening_number == "SCR-0077"
