"""A day at the site in a real browser (Debian's Chromium driven by Playwright) against a live
server on PostgreSQL: a coordinator screens, consents and enters the eligibility CRF, the
investigator signs, the coordinator randomizes, logs an AE and answers a query; a monitor reads
without a form to fill; nobody of a site reaches the admin or another site's subject.

Then the main pages at desktop, tablet and phone widths: no sideways scrolling, a screenshot of
each at 1280 and 768 px in ``test-artifacts/screenshots/`` (git-ignored) for a reviewer, and
axe-core's accessibility rules (installed by ``make browser``) with no serious or critical
violation, one <main>, <h1> and <nav> and a language on each; and forms a keyboard goes through.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.services import record_adverse_event, study_drugs_of
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from eligibility.models import EligibilityAssessment
from queries import services as query_services
from queries.models import DataQuery, QueryStatus, ResponseReason
from randomization.models import Allocation
from subjects.models import Subject

from .builders import (
    PASSWORD,
    days_ago,
    ensure_active_list,
    make_eligible_assessment,
    make_randomized_subject,
    make_subject,
    make_user,
)
from .builders.browser import axe_violations, log_in, log_out
from .builders.eligibility import crf_post, eligible_data

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = Path(settings.BASE_DIR) / "test-artifacts" / "screenshots"
WIDTHS = {"desktop": 1280, "tablet": 768, "phone": 390}
SCREENSHOT_WIDTHS = ("desktop", "tablet")

FILL_FORM = """values => {
  const form = document.querySelector("main form.crf");
  for (const [name, value] of Object.entries(values)) {
    const input = form.querySelector(`[name="${name}"]`);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value === "true" || value === "on";
    else input.value = value;
  }
}"""
WRITE_FORMS = "document.querySelectorAll('main form[method=post]').length"


def still_missing(page) -> int:
    """How many criteria the CRF page lists as still missing (0: nothing is)."""
    box = page.locator("#still-missing").inner_text()
    if "Nothing is missing" in box:
        return 0
    found = re.search(r"Still missing \((\d+)\)", box)
    assert found, box
    return int(found.group(1))


def said(page, text: str) -> None:
    """The page's messages say ``text`` (waiting for the page the last action led to)."""
    expect(page.locator(".messages")).to_contain_text(text)


@pytest.mark.postgres  # the walk runs against a live server on PostgreSQL, as in production
def test_a_day_at_the_site(page, site, coordinator, investigator, other_site):
    ensure_active_list(slots_per_stratum=8)
    load_starter_terms()
    other_coordinator = make_user(Role.SITE_STAFF, other_site, username="other")
    monitor = make_user(Role.MONITOR, site, username="monitor")

    # --- The coordinator screens and consents a patient. ----------------------------------
    log_in(page, coordinator.username, PASSWORD)
    page.click("text=Register a screened patient")
    page.fill("#id_screening_number", "SCR-0101")
    page.fill("#id_date_of_birth", "1958-03-02")
    page.select_option("#id_sex", "M")
    page.fill("#id_initials", "WZ")
    page.click("main button[type=submit]")
    said(page, "Subject 101-0001 registered.")
    subject = Subject.objects.get(site=site)
    sid = subject.subject_identifier
    page.click("text=Record consent")
    page.fill("#id_consent_date", timezone.localdate().isoformat())
    page.fill("#id_consent_version", "2.0")
    page.click("main button[type=submit]")
    said(page, "Informed consent recorded.")

    # --- The eligibility CRF, in three saves: the "still missing" list shrinks to nothing. --
    page.click("text=Enter the eligibility CRF")
    assert "after the first save, this box lists what is still missing" in page.content()
    assert page.locator("nav.crf-sections a").count() >= 5
    page.fill("#id_planned_randomization_date", timezone.localdate().isoformat())
    page.select_option("#id_diagnosis_basis", "histological")
    page.select_option("#id_ecog", "0")
    page.click("main form.crf button[type=submit]")
    said(page, "Eligibility saved.")
    page.click("text=Edit the CRF")
    first = still_missing(page)
    assert first > 0

    data = crf_post(eligible_data(subject))
    labs = {name: value for name, value in data.items() if name.endswith(("_reported", "_unit"))}
    assert labs, "no lab values in the CRF data"
    page.fill("#id_total_bilirubin_reported", "0.89")
    page.select_option("#id_total_bilirubin_unit", "mg/dL")
    page.evaluate(FILL_FORM, labs | {"lab_date": data["lab_date"]})
    page.fill("#id_reason", "Screening labs arrived")
    page.click("main form.crf button[type=submit]")
    said(page, "Eligibility saved.")
    page.click("text=Edit the CRF")
    second = still_missing(page)
    assert 0 < second < first
    assert "saved as 15.2 µmol/L (SI)" in page.content()  # 0.89 mg/dL, converted

    page.evaluate(FILL_FORM, data)
    page.fill("#id_reason", "Screening complete")
    page.click("main form.crf button[type=submit]")
    said(page, "all 34 criteria pass")
    page.click("text=Edit the CRF")
    assert still_missing(page) == 0
    log_out(page)

    # --- The investigator signs it off, re-entering the password. -----------------------------
    log_in(page, investigator.username, PASSWORD)
    page.goto(f"/subjects/{sid}/eligibility/")
    page.click("text=Sign: eligible")
    page.fill("#id_password", "not my password")
    page.click("main button[type=submit]")
    expect(page.locator("main")).to_contain_text("The password is not correct")
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    said(page, "I confirm this subject meets all eligibility criteria")
    log_out(page)

    # --- The coordinator randomizes. ------------------------------------------------------------
    log_in(page, coordinator.username, PASSWORD)
    page.goto(f"/subjects/{sid}/")
    page.click("main a:has-text('Randomize')")
    page.check("#id_confirm")
    page.click("main button[type=submit]")
    said(page, "randomized")
    allocation = Allocation.objects.get(subject=subject)
    said(page, f"number {allocation.randomization_number}, arm {allocation.arm}")

    # --- ... and logs an AE: a grade the term does not have is refused, naming the field. -----
    page.goto(f"/subjects/{sid}/")
    page.click("text=Record an adverse event")
    alopecia = CtcaeTerm.objects.get(term="Alopecia")
    page.select_option("#id_term", str(alopecia.pk))
    # A page older than the dictionary (or a crafted post) offers grade 4: the server refuses it.
    page.evaluate("document.querySelector('#id_grade').add(new Option('Grade 4', '4'))")
    page.select_option("#id_grade", "4")
    page.fill("#id_onset_date", days_ago(0).isoformat())
    page.check("#id_ongoing")
    page.select_option("#id_outcome", "not_recovered")
    for select in page.locator("select[id^=id_causality_], select[id^=id_action_]").all():
        select.select_option(index=1)
    page.click("main button:has-text('Save AE')")
    summary = page.locator(".error-summary")
    assert "Nothing was saved" in summary.inner_text()
    assert summary.locator('a[href="#id_grade"]').inner_text() == "CTCAE grade"
    assert "Alopecia has no grade 4" in summary.inner_text()
    assert page.input_value("#id_onset_date") == days_ago(0).isoformat()  # nothing typed lost
    assert not AdverseEvent.objects.exists()
    # Corrected, then a double click on "Save AE": one AE.
    page.select_option("#id_grade", "2")
    page.dblclick("main button:has-text('Save AE')")
    page.wait_for_url(f"**/subjects/{sid}/adverse-events/")
    said(page, "AE 1 recorded: Alopecia grade 2.")
    assert AdverseEvent.objects.filter(subject=subject).count() == 1
    ae = AdverseEvent.objects.get(subject=subject)
    log_out(page)

    # --- A monitor reads everything, with no form to fill in, and raises a query. -------------
    log_in(page, monitor.username, PASSWORD)
    for url in (
        f"/subjects/{sid}/",
        f"/subjects/{sid}/eligibility/",
        f"/subjects/{sid}/adverse-events/",
        f"/subjects/{sid}/adverse-events/{ae.ae_number}/",
        f"/subjects/{sid}/randomize/",
    ):
        page.goto(url)
        assert page.evaluate(WRITE_FORMS) == 0, url
        assert page.locator("main input:not([type=hidden]):not([type=search])").count() == 0, url
        assert sid in page.locator("h1").inner_text(), url
    page.goto(f"/subjects/{sid}/adverse-events/{ae.ae_number}/")
    assert "Alopecia" in page.content() and "Read-only" in page.content()
    page.goto(f"/subjects/{sid}/eligibility/edit/")  # typed by hand: back to the read-only page
    assert page.url.endswith(f"/subjects/{sid}/")
    said(page, "You may view")
    page.goto(f"/subjects/{sid}/adverse-events/{ae.ae_number}/")
    page.click("main a:has-text('Raise a query on this record')")
    page.select_option("#id_field", "grade")
    page.fill("#id_message", "Grade 2 alopecia at day 0: please check the onset date.")
    page.click("main button:has-text('Raise the query')")
    query = DataQuery.objects.get()
    said(page, f"{query} raised")
    log_out(page)

    # --- The coordinator answers it from the inbox. -------------------------------------------
    log_in(page, coordinator.username, PASSWORD)
    page.goto("/queries/")
    page.click(f"main a:has-text('Query {query.pk}')")
    page.select_option("#id_answer-reason", ResponseReason.CONFIRMED_CORRECT)
    page.fill("#id_answer-text", "Onset confirmed in the visit notes.")
    page.click("main button:has-text('Answer')")
    said(page, f"Query {query.pk} answered.")
    assert DataQuery.objects.get(pk=query.pk).status == QueryStatus.ANSWERED

    # --- The coordinator has no admin. --------------------------------------------------------
    page.goto("/admin/")
    assert "/admin/login/" in page.url
    assert "not authorized to access this page" in page.content()
    assert sid not in page.content()
    page.goto("/subjects/")
    log_out(page)

    # --- Site 202's coordinator cannot reach a site 101 subject by URL. -----------------------
    log_in(page, other_coordinator.username, PASSWORD)
    for url in (
        f"/subjects/{sid}/",
        f"/subjects/{sid}/eligibility/",
        f"/subjects/{sid}/adverse-events/{ae.ae_number}/",
        f"/subjects/{sid}/randomize/",
        f"/queries/{query.pk}/",
    ):
        response = page.goto(url)
        assert response.status in (403, 404), url
        shown = page.locator("body").inner_text()
        for secret in ("SCR-0101", "WZ", "1958-03-02", site.name, "Alopecia"):
            assert secret not in shown, (url, secret)
    assert EligibilityAssessment.objects.filter(subject=subject).count() == 1


# --- The main pages at three widths: no sideways scrolling, screenshots, accessibility. ---------

OVERFLOW = """() => {
  // The page's width against the window's, and (to say what to fix) the first elements that
  // stick out of the window without a scrolling box of their own around them.
  const width = window.innerWidth;
  const inScrollingBox = e => {
    for (let a = e.parentElement; a && a !== document.body; a = a.parentElement)
      if (getComputedStyle(a).overflowX !== "visible") return true;
    return false;
  };
  const wide = [...document.querySelectorAll("body *")]
    .filter(e => e.getBoundingClientRect().right > width + 1 && !inScrollingBox(e))
    .slice(0, 5)
    .map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
              + (typeof e.className === "string" && e.className ? "." + e.className : ""));
  return {scroll: document.documentElement.scrollWidth, width, wide};
}"""


LANDMARKS = """() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang attribute on <html>");
  if (document.querySelectorAll("main").length !== 1) problems.push("not one <main>");
  if (document.querySelectorAll("h1").length !== 1) problems.push("not one <h1>");
  if (document.querySelector("header form") && !document.querySelector("header nav"))
    problems.push("a logged-in page without its <nav>");
  return problems;
}"""


@pytest.fixture
def study(site, coordinator, investigator, other_site, data_manager):
    """A site with subjects in every state the main pages show: randomized with AEs and queries,
    signed and waiting for randomization, in screening with an SAE report overdue."""
    ensure_active_list(slots_per_stratum=8)
    load_starter_terms()
    randomized = make_randomized_subject(site, by=coordinator)
    drugs = study_drugs_of(randomized)
    hypertension = CtcaeTerm.objects.get(term="Hypertension")
    ae = record_adverse_event(
        randomized,
        user=coordinator,
        term=hypertension,
        verbatim_term="Blood pressure 165/100 mmHg at the day 15 visit, treated at home",
        grade=2,
        onset_date=days_ago(0),
        ongoing=True,
        outcome="not_recovered",
        causality={d: {"causality": "possible", "action_taken": "not_changed"} for d in drugs},
    )
    waiting = make_subject(site, by=coordinator, consent_date=days_ago(2))
    make_eligible_assessment(waiting, by=coordinator, investigator=investigator)
    screening = make_subject(site, by=coordinator, consent_date=days_ago(20))
    record_adverse_event(
        screening,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Diarrhea"),
        grade=3,
        onset_date=days_ago(2),
        ongoing=True,
        outcome="not_recovered",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=timezone.now() - timedelta(hours=30),
    )
    assessment = EligibilityAssessment.objects.get(subject=randomized)
    query = query_services.raise_query(
        ae,
        field="grade",
        message="Grade 2 hypertension needs medical intervention: "
        "which antihypertensive was started, and on which date? " * 2,
        user=data_manager,
    )
    query_services.raise_query(
        assessment, field="ecog", message="ECOG 0, but the visit notes say 1?", user=data_manager
    )
    for n in range(3):
        make_subject(other_site, screening_number=f"SCR-B{n}")
    return {"randomized": randomized, "ae": ae, "waiting": waiting, "query": query}


def main_pages(study) -> dict[str, str]:
    randomized = study["randomized"].subject_identifier
    return {
        "login": "/accounts/login/",
        "dashboard": "/dashboard/",
        "subject-list": "/subjects/",
        "subject": f"/subjects/{randomized}/",
        "eligibility": f"/subjects/{randomized}/eligibility/",
        "eligibility-crf": f"/subjects/{randomized}/eligibility/edit/",
        "ae-form": f"/subjects/{randomized}/adverse-events/{study['ae'].ae_number}/",
        "ae-new": f"/subjects/{randomized}/adverse-events/new/",
        "query-inbox": "/queries/",
        "query": f"/queries/{study['query'].pk}/",
        "randomization": f"/subjects/{study['waiting'].subject_identifier}/randomize/",
        "error-404": "/subjects/999-9999/",
    }


def test_main_pages_fit_every_width_and_pass_axe(browser, live_server, coordinator, study):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pages = main_pages(study)
    problems = []
    for label, width in WIDTHS.items():
        context = browser.new_context(
            base_url=live_server.url, viewport={"width": width, "height": 900}
        )
        page = context.new_page()
        page.set_default_timeout(10_000)
        for name, url in pages.items():
            if name == "dashboard":  # the login page first, then a coordinator's pages
                log_in(page, coordinator.username, PASSWORD)
            page.goto(url)
            found = page.evaluate(OVERFLOW)
            if found["scroll"] > found["width"]:
                problems.append(f"{name} at {width} px: {found}")
            if label in SCREENSHOT_WIDTHS:
                page.screenshot(
                    path=str(SCREENSHOTS / f"{name}-{label}-{width}.png"), full_page=True
                )
            if label == "desktop":
                problems += [f"{name}: {v}" for v in axe_violations(page)]
                problems += [f"{name}: {p}" for p in page.evaluate(LANDMARKS)]
        context.close()
    assert not problems, "\n".join(problems)


def test_forms_are_keyboard_navigable(page, coordinator, study):
    """From the top of the page, Tab reaches each form's submit button, through labelled
    controls only."""
    log_in(page, coordinator.username, PASSWORD)
    randomized = study["randomized"].subject_identifier
    for url, button in (
        (f"/subjects/{randomized}/adverse-events/new/", "Save AE"),
        ("/subjects/new/", "Save"),
        (f"/subjects/{study['waiting'].subject_identifier}/randomize/", "Randomize"),
    ):
        page.goto(url)
        for _ in range(120):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                """() => { const e = document.activeElement;
                  return {tag: e.tagName, type: e.type || "", text: e.innerText || "",
                          labelled: e.labels ? e.labels.length > 0 || !!e.getAttribute("aria-label")
                                              || !!e.getAttribute("aria-labelledby") : true}; }"""
            )
            if focused["tag"] in ("INPUT", "SELECT", "TEXTAREA") and focused["type"] != "hidden":
                assert focused["labelled"], (url, focused)
            if focused["tag"] == "BUTTON" and button in focused["text"]:
                break
        else:
            pytest.fail(f"Tab never reached '{button}' on {url}")
