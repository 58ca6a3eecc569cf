"""The investigator signs eligibility off and the coordinator randomizes, in a real browser."""

import pytest

from core.roles import Role
from randomization.models import Allocation

from .builders import (
    PASSWORD,
    ensure_active_list,
    make_eligible_assessment,
    make_subject,
    make_user,
)
from .builders.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_sign_off_then_randomize(page, site, coordinator):
    ensure_active_list()
    subject = make_subject(site, by=coordinator)
    make_eligible_assessment(subject, by=coordinator, sign=False, ecog=1)
    investigator = make_user(Role.INVESTIGATOR, site)

    log_in(page, investigator.username, PASSWORD)
    page.goto(f"/subjects/{subject.subject_identifier}/eligibility/")
    assert "all 34 criteria pass" in page.content()
    page.click("text=Sign: eligible")
    page.fill("#id_password", "not my password")
    page.click("main button[type=submit]")
    assert "The password is not correct" in page.content()
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    assert "I confirm this subject meets all eligibility criteria" in page.content()
    page.click("header button[type=submit]")  # log out

    log_in(page, coordinator.username, PASSWORD)
    page.goto(f"/subjects/{subject.subject_identifier}/randomize/")
    assert "ECOG 1" in page.locator("dl.facts").inner_text()  # the derived stratum
    page.click("main button[type=submit]")  # not confirmed yet
    assert Allocation.objects.count() == 0
    page.check("#id_confirm")
    page.click("main button[type=submit]")
    allocation = Allocation.objects.get(subject=subject)
    message = page.locator(".messages").inner_text()
    assert f"number {allocation.randomization_number}, arm {allocation.arm}" in message
    page.goto(subject.get_absolute_url())
    assert "Randomized" in page.locator("h1").inner_text()
