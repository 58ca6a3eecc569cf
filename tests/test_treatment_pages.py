"""Treatment pages (calendar, cycle form with IV doses, sorafenib period form), the subject
panel, the admin, the EX dataset, the API and site scoping."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events.services import record_adverse_event
from core import registry
from core.edit_checks import Scope
from core.roles import Role
from efficacy.selectors import calendar_facts as efficacy_facts
from randomization.arms import Arm, StudyDrug
from survival.selectors import calendar_facts as survival_facts
from treatment import selectors
from treatment.edit_checks import CHECKS
from treatment.models import Cycle, IvDose, OralDosingPeriod
from treatment.schedule import VisitKind, VisitStatus
from treatment.sdtm import DATASETS

from .builders import make_user, site_today, write_forms
from .builders.ctcae import term
from .builders.efficacy import add_assessment, add_baseline
from .builders.pages import token_in
from .builders.survival import end_treatment, follow_up, record_death
from .builders.treatment import (
    add_cycle,
    add_oral_period,
    make_subject_randomized_days_ago,
    randomized_on,
)

TORI, BEV = StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB


@pytest.fixture
def arm_a(site, coordinator):
    return make_subject_randomized_days_ago(Arm.A, site, 50, by=coordinator)


@pytest.fixture
def arm_b(site, coordinator):
    return make_subject_randomized_days_ago(Arm.B, site, 50, by=coordinator)


def url(name, subject, *args):
    return reverse(f"treatment:{name}", args=[subject.subject_identifier, *args])


def cycle_post(subject, number=1, *, weight="70.0", bev="1050", **extra):
    day1 = randomized_on(subject) + timedelta(days=21 * (number - 1))
    data = {
        "number": str(number),
        "day1_date": day1.isoformat(),
        "weight_kg": weight,
        f"{TORI}_given_dose_mg": "240",
        f"{TORI}_administered_date": day1.isoformat(),
        f"{BEV}_given_dose_mg": bev,
        f"{BEV}_administered_date": day1.isoformat(),
    }
    return data | extra


def test_calendar_page_shows_done_overdue_and_expected_visits(client, arm_a, coordinator):
    add_cycle(arm_a, 1, by=coordinator)
    client.force_login(coordinator)
    page = client.get(url("calendar", arm_a)).content.decode()
    # Day 50: cycle 1 done, cycle 2 (day 21) overdue, cycle 3 (day 42 ± 3) overdue too.
    assert "Cycle 1 day 1" in page and 'class="visit-done"' in page
    assert 'class="visit-overdue"' in page
    assert "Tumor assessment 1 (week 6)" in page
    assert "Toripalimab" in page and "Bevacizumab" in page
    assert "Record a cycle" in page
    assert "Sorafenib dosing periods" not in page  # arm A takes no sorafenib


def test_subject_page_has_the_treatment_panel(client, arm_a, coordinator):
    add_cycle(arm_a, 1, by=coordinator)
    client.force_login(coordinator)
    page = client.get(arm_a.get_absolute_url()).content.decode()
    assert "<h2>Treatment</h2>" in page
    assert "overdue" in page and "Relative dose intensity" in page


def test_record_a_cycle_with_its_doses_through_the_form(client, arm_a, coordinator):
    client.force_login(coordinator)
    form = client.get(url("cycle_new", arm_a))
    assert form.status_code == 200
    token = token_in(form.content.decode())
    data = cycle_post(arm_a, submission=token)
    response = client.post(url("cycle_new", arm_a), data)
    assert response.status_code == 302, response.content.decode()
    cycle = Cycle.objects.get(subject=arm_a)
    assert cycle.iv_doses.get(drug=BEV).planned_dose_mg == Decimal("1050.0")
    # A second click of the same form makes nothing more.
    client.post(url("cycle_new", arm_a), data)
    assert Cycle.objects.filter(subject=arm_a).count() == 1


def test_a_reduction_without_reason_shows_on_the_drugs_field(client, arm_a, coordinator):
    client.force_login(coordinator)
    token = token_in(client.get(url("cycle_new", arm_a)).content.decode())
    data = cycle_post(arm_a, bev="700", submission=token, **{f"{BEV}_reduced": "on"})
    response = client.post(url("cycle_new", arm_a), data)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "Bevacizumab: Give the reason" in errors[f"{BEV}_dose_change_reason"][0]
    assert not Cycle.objects.filter(subject=arm_a).exists()


def test_correct_a_cycle_needs_a_reason(client, arm_a, coordinator):
    cycle = add_cycle(arm_a, 1, by=coordinator)
    client.force_login(coordinator)
    page = client.get(url("cycle", arm_a, 1))
    assert page.status_code == 200
    data = cycle_post(arm_a, weight="72.0", bev="1050")
    response = client.post(url("cycle", arm_a, 1), data)
    assert response.status_code == 200 and "reason" in response.context["form"].errors
    response = client.post(url("cycle", arm_a, 1), data | {"reason": "Weight re-read"})
    assert response.status_code == 302
    cycle.refresh_from_db()
    assert cycle.weight_kg == Decimal("72.0")
    assert cycle.iv_doses.get(drug=BEV).planned_dose_mg == Decimal("1080.0")


def test_sorafenib_period_form(client, arm_b, coordinator):
    client.force_login(coordinator)
    start = randomized_on(arm_b)
    token = token_in(client.get(url("oral_period_new", arm_b)).content.decode())
    data = {
        "dose_level": "400",
        "start_date": start.isoformat(),
        "stop_date": (start + timedelta(days=6)).isoformat(),
        "submission": token,
    }
    response = client.post(url("oral_period_new", arm_b), data)
    assert response.status_code == 200
    assert "dose_change_reason" in response.context["form"].errors
    response = client.post(url("oral_period_new", arm_b), data | {"dose_change_reason": "Diarrhea"})
    assert response.status_code == 302
    period = OralDosingPeriod.objects.get(subject=arm_b)
    page = client.get(url("calendar", arm_b)).content.decode()
    assert "400 mg/day (400 mg once daily)" in page and "Diarrhea" in page
    assert client.get(url("oral_period", arm_b, period.pk)).status_code == 200


def test_the_cycle_form_of_an_arm_b_subject_has_no_iv_dose(client, arm_b, coordinator):
    client.force_login(coordinator)
    page = client.get(url("cycle_new", arm_b)).content.decode()
    assert "Toripalimab" not in page and "Bevacizumab" not in page


def test_a_monitor_reads_and_another_site_sees_nothing(
    client, arm_a, site, coordinator, other_coordinator
):
    add_cycle(arm_a, 1, by=coordinator)
    monitor = make_user(Role.MONITOR, site)
    client.force_login(monitor)
    page = client.get(url("cycle", arm_a, 1))
    assert page.status_code == 200 and write_forms(page.content.decode()) == 0
    assert "Read-only" in page.content.decode()
    assert client.get(url("cycle_new", arm_a)).status_code == 302  # back to the subject
    assert "Record a cycle" not in client.get(url("calendar", arm_a)).content.decode()
    client.force_login(other_coordinator)
    for path in (url("calendar", arm_a), url("cycle", arm_a, 1), url("cycle_new", arm_a)):
        assert client.get(path).status_code == 404, path


def test_data_manager_admin_is_read_only(client, arm_a, coordinator, data_manager):
    add_cycle(arm_a, 1, by=coordinator)
    client.force_login(data_manager)
    listing = client.get(reverse("admin:treatment_cycle_changelist"))
    assert listing.status_code == 200 and arm_a.subject_identifier in listing.content.decode()
    assert client.get(reverse("admin:treatment_ivdose_changelist")).status_code == 200
    assert client.get(reverse("admin:treatment_cycle_add")).status_code == 403
    # The audit trail of each record, and one of its history records, read-only.
    cycle = Cycle.objects.get(subject=arm_a)
    dose = cycle.iv_doses.first()
    period_subject = make_subject_randomized_days_ago(Arm.B, arm_a.site, 5, by=coordinator)
    period = add_oral_period(period_subject, by=coordinator, start=randomized_on(period_subject))
    for model, record in (("cycle", cycle), ("ivdose", dose), ("oraldosingperiod", period)):
        history = reverse(f"admin:treatment_{model}_history", args=[record.pk])
        assert client.get(history).status_code == 200, model
        one = reverse(
            f"admin:treatment_{model}_simple_history",
            args=[record.pk, record.history.first().history_id],
        )
        assert client.get(one).status_code == 200, model


def test_ex_dataset_rows_and_scope(arm_a, arm_b, coordinator, other_coordinator):
    add_cycle(arm_a, 1, by=coordinator)
    start = randomized_on(arm_b)
    add_oral_period(arm_b, by=coordinator, start=start, stop=start + timedelta(days=9))
    add_oral_period(arm_b, by=coordinator, start=start + timedelta(days=10), level="held", why="AE")
    [ex] = DATASETS
    names = [c.name for c in ex.columns]
    rows = [dict(zip(names, row, strict=True)) for row in ex.rows(coordinator)]
    assert ex.count(coordinator) == len(rows) == 4
    iv = [r for r in rows if r["EXROUTE"] == "INTRAVENOUS"]
    assert [(r["EXSEQ"], r["EXTRT"], r["EXDOSE"]) for r in iv] == [
        (1, "BEVACIZUMAB", "1050"),
        (2, "TORIPALIMAB", "240"),
    ]
    assert iv[0]["VISIT"] == "CYCLE 1" and iv[0]["EXSTDTC"] == start.isoformat()
    oral = [r for r in rows if r["EXROUTE"] == "ORAL"]
    assert [(r["EXSEQ"], r["EXDOSE"], r["EXDOSFRQ"], r["EXENDTC"]) for r in oral] == [
        (1, "400", "BID", (start + timedelta(days=9)).isoformat()),
        (2, "0", None, None),
    ]
    assert oral[1]["EXADJ"] == "AE"
    assert list(ex.rows(other_coordinator)) == []
    assert len(list(ex.rows(None))) == 4  # the operator at the shell: every site


def test_the_api_exports_cycles_with_their_iv_doses(arm_a, coordinator, sponsor):
    add_cycle(arm_a, 1, by=coordinator)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=sponsor).key}")
    response = client.get("/api/v1/treatment-cycles/")
    assert response.status_code == 200, response.content
    [row] = response.json()["results"]
    assert row["subject"] == arm_a.subject_identifier
    assert {d["drug"]: d["planned_dose_mg"] for d in row["iv_doses"]} == {
        "bevacizumab": "1050.0",
        "toripalimab": "240.0",
    } or {d["drug"] for d in row["iv_doses"]} == {"bevacizumab", "toripalimab"}
    assert IvDose.objects.count() == 2


# --- the calendar hears of the apps above (efficacy, survival) through its hook ------------------


def scan(subject, *, by, on: date, response="SD", **extra):
    """A tumor assessment on ``on`` (the baseline lesions must be recorded)."""
    return add_assessment(
        subject,
        by=by,
        days_ago_=(site_today() - on).days,
        measurements={1: 38, 2: 19},
        investigator_response=response,
        **extra,
    )


def schedule_day(subject, n: int) -> date:
    """Day ``n`` of the schedule (day 0: the randomization date)."""
    return randomized_on(subject) + timedelta(days=n)


def overdue_of(subject):
    return {v.code for v in selectors.subject_calendar(subject).with_status(VisitStatus.OVERDUE)}


def next_cycle_overdue(subject):
    """Edit check TRT-005's violations for ``subject``."""
    [check] = [c for c in CHECKS if c.code == "TRT-005"]
    return [v for v in check.find(Scope()) if v.subject_id == subject.pk]


def test_efficacy_and_survival_give_the_calendar_its_facts():
    assert efficacy_facts in registry.calendar_facts()
    assert survival_facts in registry.calendar_facts()


def test_tumor_assessments_done_show_done_not_overdue(client, site, coordinator):
    subject = make_subject_randomized_days_ago(Arm.A, site, 100, by=coordinator)
    for number in range(1, 6):  # days 0 to 84: cycle 6 (day 105) is the next one due
        add_cycle(subject, number, by=coordinator)
    add_baseline(subject, by=coordinator, baseline_days_ago=101)
    scan(subject, by=coordinator, on=schedule_day(subject, 43))
    scan(subject, by=coordinator, on=schedule_day(subject, 84))
    calendar = selectors.subject_calendar(subject)
    tumor = {v.code: v for v in calendar.of_kind(VisitKind.TUMOR)}
    assert tumor["TA1"].done_on == schedule_day(subject, 43) and tumor["TA1"].in_window
    assert tumor["TA2"].status == VisitStatus.DONE
    assert tumor["TA3"].status == VisitStatus.EXPECTED
    assert overdue_of(subject) == set()
    client.force_login(coordinator)
    page = client.get(url("calendar", subject)).content.decode()
    assert "Visits: 7 done, 2 expected, 0 overdue, 0 missed." in page
    assert 'class="visit-overdue"' not in page


def test_after_the_end_of_treatment_no_cycle_is_overdue_and_follow_up_is_expected(
    client, site, coordinator, ctcae
):
    subject = make_subject_randomized_days_ago(Arm.A, site, 130, by=coordinator)
    for number in range(1, 4):  # days 0, 21, 42
        add_cycle(subject, number, by=coordinator)
    add_baseline(subject, by=coordinator, baseline_days_ago=131)
    scan(subject, by=coordinator, on=schedule_day(subject, 42))
    scan(subject, by=coordinator, on=schedule_day(subject, 84))
    assert "C4" in overdue_of(subject)  # day 63: neither given nor ended
    assert [v.message[:7] for v in next_cycle_overdue(subject)] == ["Cycle 4"]
    end_treatment(subject, by=coordinator, day=43)  # the last dose on day 42, cycle 3
    calendar = selectors.subject_calendar(subject)
    visits = {v.code: v for v in calendar.visits}
    assert [v.code for v in calendar.of_kind(VisitKind.CYCLE)] == ["C1", "C2", "C3"]
    last_dose = schedule_day(subject, 42)
    assert visits["SFU30"].target == last_dose + timedelta(days=30)
    assert visits["SFU90"].target == last_dose + timedelta(days=90)
    assert visits["SURV1"].target == last_dose + timedelta(weeks=12)
    # Day 130: the 30-day safety follow-up (day 72 ± 7) passed with nothing recorded in it.
    assert overdue_of(subject) == {"SFU30"}
    assert next_cycle_overdue(subject) == []  # the edit check: no cycle is due any more
    # An adverse event reported with its onset in the window: the safety follow-up is done.
    record_adverse_event(
        subject,
        user=coordinator,
        term=term("Fatigue"),
        grade=1,
        onset_date=last_dose + timedelta(days=31),
        ongoing=True,
        outcome="not_recovered",
        causality={
            TORI: {"causality": "possible", "action_taken": "not_applicable"},
            BEV: {"causality": "unlikely", "action_taken": "not_applicable"},
        },
    )
    calendar = selectors.subject_calendar(subject)
    visits = {v.code: v for v in calendar.visits}
    assert visits["SFU30"].done_on == last_dose + timedelta(days=31)
    assert overdue_of(subject) == set()
    assert {visits[c].status for c in ("SFU90", "SURV1", "TA3")} == {VisitStatus.EXPECTED}
    # The survival contact 84 days after the last dose marks SURV1, and SFU90 (in its window).
    follow_up(subject, by=coordinator, day=43 + 84)
    visits = {v.code: v for v in selectors.subject_calendar(subject).visits}
    assert visits["SURV1"].status == visits["SFU90"].status == VisitStatus.DONE


def test_trt006_overdue_scans_and_follow_up_raise_one_query_until_none_is_left(
    site, coordinator, ctcae
):
    """The edit check sees what the calendar shows overdue (not the cycles: TRT-005): one query
    per subject naming each visit, its message kept current, closed once nothing is overdue."""
    from queries.models import DataQuery, QueryStatus
    from queries.sweep import run_edit_checks

    subject = make_subject_randomized_days_ago(Arm.A, site, 130, by=coordinator)
    for number in range(1, 4):  # days 0, 21, 42
        add_cycle(subject, number, by=coordinator)
    add_baseline(subject, by=coordinator, baseline_days_ago=131)
    scan(subject, by=coordinator, on=schedule_day(subject, 42))
    end_treatment(subject, by=coordinator, day=43)  # the last dose on day 42
    # Day 130: TA2 (day 84 ± 7) and the 30-day safety follow-up (day 72 ± 7) are overdue.
    assert overdue_of(subject) == {"TA2", "SFU30"}
    [check] = [c for c in CHECKS if c.code == "TRT-006"]
    [violation] = [v for v in check.find(Scope()) if v.subject_id == subject.pk]
    assert violation.values == {"overdue": "SFU30, TA2"}  # by target date
    assert "Tumor assessment 2 (week 12): target" in violation.message
    assert check.find(Scope(subject_ids={subject.pk})) == [violation]  # one subject, the same
    assert run_edit_checks(subject_ids=[subject.pk], codes=["TRT-006"]).opened == 1
    query = DataQuery.objects.get(check_code="TRT-006", object_id=subject.pk)

    scan(subject, by=coordinator, on=schedule_day(subject, 85))
    run_edit_checks(subject_ids=[subject.pk], codes=["TRT-006"])
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN and query.value_snapshot == {"overdue": "SFU30"}
    assert "Tumor assessment" not in query.message

    follow_up(subject, by=coordinator, day=73)  # a contact in the safety follow-up's window
    assert overdue_of(subject) == set()
    assert run_edit_checks(subject_ids=[subject.pk], codes=["TRT-006"]).closed == 1
    query.refresh_from_db()
    assert query.status != QueryStatus.OPEN


def test_after_a_death_nothing_is_expected(site, coordinator):
    subject = make_subject_randomized_days_ago(Arm.A, site, 150, by=coordinator)
    for number in range(1, 4):
        add_cycle(subject, number, by=coordinator)
    end_treatment(subject, by=coordinator, day=43)
    record_death(subject, by=coordinator, day=101)  # schedule day 100
    facts = survival_facts([subject.pk])[subject.pk]
    assert facts.follow_up_until == schedule_day(subject, 100)
    calendar = selectors.subject_calendar(subject)
    assert calendar.with_status(VisitStatus.EXPECTED) == []
    assert calendar.with_status(VisitStatus.OVERDUE) == []
    assert max(v.target for v in calendar.visits) <= schedule_day(subject, 100)
    assert next_cycle_overdue(subject) == []


def test_the_overdue_edit_check_ignores_the_cycles_done(site, coordinator):
    subject = make_subject_randomized_days_ago(Arm.A, site, 50, by=coordinator)
    add_cycle(subject, 1, by=coordinator)
    add_cycle(subject, 3, by=coordinator)  # day 42: cycle 2 missed, not overdue
    assert overdue_of(subject) == {"TA1"}  # day 42 ± 7: no scan recorded (no cycle overdue)
    assert next_cycle_overdue(subject) == []
    calendar = {v.code: v for v in selectors.subject_calendar(subject).visits}
    assert calendar["C2"].status == VisitStatus.MISSED
    assert calendar["C4"].status == VisitStatus.EXPECTED  # day 63
