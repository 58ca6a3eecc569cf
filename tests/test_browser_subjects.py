"""A coordinator registers and consents a patient in a real browser."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from subjects.models import Subject

from .builders import PASSWORD, make_subject
from .builders.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_register_and_consent_in_browser(page, site, coordinator, other_site):
    foreign = make_subject(other_site)
    log_in(page, coordinator.username, PASSWORD)
    assert page.locator("h1").inner_text() == "Subjects"
    assert foreign.subject_identifier not in page.content()

    page.click("text=Register a screened patient")
    page.fill("#id_screening_number", "SCR-0042")
    page.fill("#id_date_of_birth", (timezone.localdate() + timedelta(days=2)).isoformat())
    page.select_option("#id_sex", "F")
    page.click("main button[type=submit]")
    assert "This date is in the future." in page.content()
    assert not Subject.objects.filter(site=site).exists()

    page.fill("#id_date_of_birth", "1961-04-09")
    page.fill("#id_initials", "lm")
    page.click("main button[type=submit]")
    assert "Subject 101-0001 registered." in page.locator(".messages").inner_text()
    assert "not recorded" in page.content()

    page.click("text=Record consent")
    page.fill("#id_consent_date", timezone.localdate().isoformat())
    page.fill("#id_consent_version", "2.0")
    page.click("main button[type=submit]")
    assert "Informed consent recorded." in page.locator(".messages").inner_text()
    header_colour = page.evaluate(
        "getComputedStyle(document.querySelector('header.top')).backgroundColor"
    )
    assert header_colour == "rgb(11, 93, 122)", "the stylesheet did not load"
    Path("test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path="test-artifacts/subject_page.png", full_page=True)

    subject = Subject.objects.get(site=site)
    assert (subject.initials, subject.consent_version) == ("LM", "2.0")
    assert subject.history.first().history_user == coordinator
