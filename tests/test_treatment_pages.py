"""Treatment pages (calendar, cycle form with IV doses, sorafenib period form), the subject
panel, the admin, the EX dataset, the API and site scoping."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.roles import Role
from randomization.arms import Arm, StudyDrug
from treatment.models import Cycle, IvDose, OralDosingPeriod
from treatment.sdtm import DATASETS

from .builders import make_user, write_forms
from .builders.pages import token_in
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
