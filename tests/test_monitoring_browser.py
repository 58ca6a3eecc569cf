"""Monitoring in a real browser: a monitor verifies a record from its CRF page; a data manager
freezes the subject's casebook, and the coordinator's form becomes read-only."""

import pytest
from playwright.sync_api import expect

from core.roles import Role
from monitoring.models import CasebookState, LockLevel, SourceDataVerification

from .builders import PASSWORD, make_eligible_assessment, make_user
from .builders.browser import log_in, log_out

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_monitor_verifies_and_a_frozen_casebook_is_read_only_for_the_site(
    page, site, subject, coordinator, data_manager
):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    monitor = make_user(Role.MONITOR, site, username="monitor")
    crf_url = f"/subjects/{subject.subject_identifier}/eligibility/"
    edit_url = f"{crf_url}edit/"

    # The monitor verifies the eligibility CRF against the source, from its page.
    log_in(page, monitor.username, PASSWORD)
    page.goto(crf_url)
    page.click("text=Verify source data…")
    expect(page.locator("h1")).to_contain_text("Source data verification")
    page.click("button:has-text('Mark source data verified')")
    expect(page.locator(".messages")).to_contain_text("source data verified")
    assert page.url.endswith(crf_url)  # back on the CRF page
    expect(page.locator('[data-badge="verified"]').first).to_be_visible()
    sdv = SourceDataVerification.objects.get(object_id=assessment.pk)
    assert sdv.verified and sdv.verified_by == monitor
    log_out(page)

    # The data manager freezes the subject's casebook from the subject page.
    log_in(page, data_manager.username, PASSWORD)
    page.goto(subject.get_absolute_url())
    page.click("text=Freeze or lock the casebook…")
    page.select_option("#id_level", LockLevel.FROZEN)
    page.click("button:has-text('Set the state')")
    expect(page.locator(".messages")).to_contain_text(f"Subject {subject}: frozen.")
    expect(page.locator('#monitoring [data-badge="frozen"]')).to_be_visible()
    assert CasebookState.objects.get(subject=subject).state == LockLevel.FROZEN
    log_out(page)

    # The coordinator's CRF is read-only now: the edit page sends back to the subject page.
    log_in(page, coordinator.username, PASSWORD)
    page.goto(crf_url)
    expect(page.locator('[data-badge="frozen"]').first).to_be_visible()
    page.goto(edit_url)
    expect(page.locator(".messages")).to_contain_text(
        f"Subject {subject} is frozen: its data can no longer be changed"
    )
    assert page.url.endswith(subject.get_absolute_url())
    expect(page.locator("form.crf")).to_have_count(0)
    expect(page.locator("text=Edit the eligibility CRF")).to_have_count(0)
