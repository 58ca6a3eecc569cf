"""A data query in a real browser: the site coordinator sees it at the field of the eligibility
CRF and answers it there, without leaving the page."""

import pytest
from playwright.sync_api import expect

from queries import services
from queries.models import DataQuery, QueryStatus, ResponseReason

from .builders import PASSWORD, make_eligible_assessment
from .builders.browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_site_answers_a_query_at_the_field(page, subject, coordinator, data_manager):
    assessment = make_eligible_assessment(subject, by=coordinator)
    query = services.raise_query(
        assessment, field="ecog", message="ECOG 0 but the visit notes say 1?", user=data_manager
    )
    edit_url = f"/subjects/{subject.subject_identifier}/eligibility/edit/"
    log_in(page, coordinator.username, PASSWORD)
    page.goto(edit_url)

    marker = page.locator(f'p:has(#id_ecog) .query-flag[data-query="{query.pk}"]')
    assert "ECOG 0 but the visit notes say 1?" in marker.inner_text()
    assert "Open" in marker.inner_text()
    marker.locator("select").select_option(ResponseReason.CONFIRMED_CORRECT)
    marker.locator("input[type=text]").fill("ECOG 0 per the source notes.")
    marker.locator("button").click()

    expect(page.locator(".messages")).to_contain_text(f"Query {query.pk} answered.")
    assert page.url.endswith(edit_url)  # back on the CRF page
    expect(marker).to_contain_text("Answered")
    expect(marker.locator("button")).to_have_count(0)
    query = DataQuery.objects.get(pk=query.pk)
    assert query.status == QueryStatus.ANSWERED
    answer = query.thread.get(kind="answered")
    assert (answer.author, answer.response_reason, answer.text) == (
        coordinator,
        ResponseReason.CONFIRMED_CORRECT,
        "ECOG 0 per the source notes.",
    )
