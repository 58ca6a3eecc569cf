"""In a real browser: the site changes an AE's grade and answers the grade's query "Data corrected"
beside the field; the new grade and the answer are saved together. Answering "Data corrected"
without changing the value is refused with a sentence; Enter in a field, no answer filled in,
saves the form and answers no query; Enter in the answer's box answers it with the save."""

import pytest
from playwright.sync_api import expect

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent
from queries import services
from queries.models import DataQuery, QueryStatus, ResponseReason

from .builders import PASSWORD, days_ago, make_subject
from .builders.browser import log_in
from .builders.ctcae import term

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("ctcae"),
]


@pytest.fixture
def grade_query(site, coordinator, data_manager):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(30))
    ae = ae_services.record_adverse_event(
        subject,
        user=coordinator,
        term=term("Hypertension"),
        grade=3,
        onset_date=days_ago(2),
        ongoing=True,
        outcome="not_recovered",
    )
    return services.raise_query(
        ae, field="grade", message="Grade 3, but the notes say 4?", user=data_manager
    )


def open_ae(page, query, user):
    ae = query.record
    url = f"/subjects/{ae.subject.subject_identifier}/adverse-events/{ae.ae_number}/"
    log_in(page, user.username, PASSWORD)
    page.goto(url)
    return url, page.locator(f'p:has(#id_grade) .query-flag[data-query="{query.pk}"]')


def test_the_corrected_grade_and_the_answer_are_saved_together(page, grade_query, coordinator):
    url, marker = open_ae(page, grade_query, coordinator)
    page.select_option("#id_grade", "4")
    page.fill("#id_reason", "Grade 4 per the source notes")
    marker.locator("select").select_option(ResponseReason.DATA_CORRECTED)
    marker.locator("input[type=text]").fill("Grade corrected to 4.")
    marker.locator("button").click()

    expect(page.locator(".messages")).to_contain_text(
        f"AE 1 updated. Query {grade_query.pk} answered."
    )
    assert page.url.endswith(url)
    expect(page.locator("#id_grade")).to_have_value("4")
    expect(marker).to_contain_text("Answered")
    assert AdverseEvent.objects.get(pk=grade_query.object_id).grade == 4
    query = DataQuery.objects.get(pk=grade_query.pk)
    assert query.status == QueryStatus.ANSWERED
    answer = query.thread.get(kind="answered")
    assert (answer.response_reason, answer.text) == (
        ResponseReason.DATA_CORRECTED,
        "Grade corrected to 4.",
    )


def test_data_corrected_on_an_unchanged_grade_is_refused(page, grade_query, coordinator):
    _url, marker = open_ae(page, grade_query, coordinator)
    marker.locator("select").select_option(ResponseReason.DATA_CORRECTED)
    marker.locator("input[type=text]").fill("Corrected.")
    marker.locator("button").click()

    expect(page.locator(".messages")).to_contain_text(
        "Grade: the value is unchanged since the query was raised: correct it, or answer that "
        "it is confirmed correct."
    )
    expect(marker).to_contain_text("Open")
    assert DataQuery.objects.get(pk=grade_query.pk).status == QueryStatus.OPEN


def test_enter_in_a_field_saves_the_form_and_answers_nothing(page, grade_query, coordinator):
    _url, _marker = open_ae(page, grade_query, coordinator)
    page.select_option("#id_grade", "4")
    page.fill("#id_reason", "Grade 4 per the source notes")
    page.locator("#id_verbatim_term").press("Enter")

    expect(page.locator(".messages")).to_contain_text("AE 1 updated.")
    assert AdverseEvent.objects.get(pk=grade_query.object_id).grade == 4
    assert DataQuery.objects.get(pk=grade_query.pk).status == QueryStatus.OPEN


def test_enter_in_the_answers_box_answers_it_with_the_save(page, grade_query, coordinator):
    _url, marker = open_ae(page, grade_query, coordinator)
    page.select_option("#id_grade", "4")
    page.fill("#id_reason", "Grade 4 per the source notes")
    marker.locator("select").select_option(ResponseReason.DATA_CORRECTED)
    marker.locator("input[type=text]").fill("Grade corrected to 4.")
    marker.locator("input[type=text]").press("Enter")

    expect(page.locator(".messages")).to_contain_text(
        f"AE 1 updated. Query {grade_query.pk} answered."
    )
    assert AdverseEvent.objects.get(pk=grade_query.object_id).grade == 4
    query = DataQuery.objects.get(pk=grade_query.pk)
    assert query.status == QueryStatus.ANSWERED
    assert query.thread.get(kind="answered").text == "Grade corrected to 4."


def test_an_answer_sent_alone_is_refused_while_the_form_has_unsaved_changes(
    page, grade_query, coordinator, data_manager
):
    """A query on the whole record is answered at the top of the page, by a form of its own."""
    record_query = services.raise_query(
        grade_query.record, field="", message="Is this AE entered twice?", user=data_manager
    )
    _url, _marker = open_ae(page, grade_query, coordinator)
    top = page.locator(f'.query-flags li[data-query="{record_query.pk}"]')
    page.select_option("#id_grade", "4")  # not saved
    top.locator("select").select_option(ResponseReason.OTHER)
    top.locator("input[type=text]").fill("Not a duplicate.")
    top.locator("button").click()

    expect(page.locator("#query-answer-refused")).to_contain_text(
        "The form below has unsaved changes"
    )
    expect(page.locator("#id_grade")).to_have_value("4")  # still on the page, unsaved
    assert DataQuery.objects.get(pk=record_query.pk).status == QueryStatus.OPEN

    page.select_option("#id_grade", "3")  # undone: the answer goes
    top.locator("button").click()
    expect(page.locator(".messages")).to_contain_text(f"Query {record_query.pk} answered.")
    assert DataQuery.objects.get(pk=record_query.pk).status == QueryStatus.ANSWERED
