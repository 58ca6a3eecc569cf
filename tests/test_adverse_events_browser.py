"""The AE form in a real browser: the grade list follows the chosen CTCAE term."""

import pytest
from django.utils import timezone

from adverse_events.models import AdverseEvent, CtcaeTerm

from .builders import PASSWORD, days_ago, make_subject
from .builders.browser import log_in

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ctcae"),
]


def grade_options(page):
    return page.eval_on_selector_all("#id_grade option", "options => options.map(o => o.value)")


def test_grade_choices_follow_the_term(page, site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(10))
    log_in(page, coordinator.username, PASSWORD)
    page.goto(f"/subjects/{subject.subject_identifier}/adverse-events/new/")
    page.select_option("#id_term", str(CtcaeTerm.objects.get(term="Death NOS").pk))
    assert grade_options(page) == ["", "5"]
    page.select_option("#id_term", str(CtcaeTerm.objects.get(term="Acidosis").pk))
    assert grade_options(page) == ["", "1", "3", "4", "5"]
    page.select_option("#id_term", str(CtcaeTerm.objects.get(term="Alopecia").pk))
    assert grade_options(page) == ["", "1", "2"]
    page.select_option("#id_grade", "2")
    assert "Hair loss of >=50% normal for that individual" in page.inner_text("#grade-text")
    page.fill("#id_onset_date", timezone.localdate().isoformat())
    page.check("#id_ongoing")
    page.select_option("#id_outcome", "not_recovered")
    page.click("main button[type=submit]")
    assert "AE 1 recorded: Alopecia grade 2." in page.locator(".messages").inner_text()
    ae = AdverseEvent.objects.get()
    assert (ae.term.term, ae.grade) == ("Alopecia", 2)
