"""Issue 11: labs entered as the laboratory reported them (value and unit, converted to the SI
unit the criteria use with one table), and prior systemic therapy as structured rows (IN04)."""

from __future__ import annotations

import csv
import importlib
import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core import access, registry
from core.errors import AccessDenied, DomainError, ReasonRequired
from core.roles import Role
from eligibility import selectors, services, units
from eligibility import settings as elig_settings
from eligibility.criteria import CriterionOutcome, bilirubin_points, child_pugh
from eligibility.models import (
    EligibilityAssessment,
    EligibilitySignature,
    PriorTherapy,
    SignatureKind,
)
from eligibility.signed_data import data_hash, signed_data
from exports import records
from subjects.selectors import subject_audit_trail
from tests.builders import PASSWORD, days_ago, eligible_data, make_eligible_assessment, make_user
from tests.builders.eligibility import crf_post, make_prior_therapy_rows, prior_therapy_post
from tests.builders.tamper import behind_the_audit

FAIL, MISSING, PASS = CriterionOutcome.FAIL, CriterionOutcome.MISSING, CriterionOutcome.PASS


def save(subject, user, reason="", **data):
    return services.save_assessment(subject, user=user, data=data, reason=reason)


def edit_url(subject, page="edit/"):
    return f"/subjects/{subject.subject_identifier}/eligibility/{page}"


# --- the conversion table -------------------------------------------------------------------------

# (lab, unit, value as reported, SI value): every unit of every lab.
CONVERSIONS = [
    ("anc", "10*9/L", "3.2", "3.20"),
    ("anc", "10*3/uL", "3.2", "3.20"),
    ("anc", "/uL", "3250", "3.25"),
    ("platelets", "10*9/L", "160", "160.0"),
    ("platelets", "10*3/uL", "160", "160.0"),
    ("platelets", "/uL", "160000", "160.0"),
    ("hemoglobin", "g/L", "128", "128.0"),
    ("hemoglobin", "g/dL", "12.8", "128.0"),
    ("total_bilirubin", "umol/L", "42.8", "42.8"),
    ("total_bilirubin", "mg/dL", "2.5", "42.8"),  # 42.75, rounded half up
    ("alt", "U/L", "45", "45.0"),
    ("alt", "ukat/L", "0.75", "45.0"),
    ("ast", "U/L", "52", "52.0"),
    ("ast", "ukat/L", "1.2", "72.0"),
    ("creatinine", "umol/L", "78", "78.0"),
    ("creatinine", "mg/dL", "1.2", "106.1"),  # 106.08
    ("creatinine_clearance", "mL/min", "92", "92.0"),
    ("inr", "1", "1.1", "1.10"),
    ("albumin", "g/L", "39.5", "39.5"),
    ("albumin", "g/dL", "3.95", "39.5"),
]


@pytest.mark.parametrize("lab, unit, reported, si", CONVERSIONS)
def test_each_unit_of_each_lab_converts_to_the_si_unit(lab, unit, reported, si):
    converted = units.to_si(lab, Decimal(reported), unit)
    assert str(converted) == si  # the SI field's decimal places


def test_the_table_covers_every_unit_of_every_lab_with_the_si_unit_first():
    assert {(lab, unit) for lab, unit, _, _ in CONVERSIONS} == {
        (lab.name, unit.code) for lab in units.LABS.values() for unit in lab.units
    }
    for lab in units.LABS.values():
        assert lab.si_unit.factor == 1
        field = EligibilityAssessment._meta.get_field(lab.name)
        assert field.decimal_places == lab.si_places
        assert elig_settings.PLAUSIBLE_RANGES[lab.name][2] == lab.si_unit.symbol


def test_a_unit_the_lab_does_not_accept_is_refused():
    with pytest.raises(units.UnknownUnit, match="not a unit of albumin: use g/L, g/dL"):
        units.to_si("albumin", Decimal("4"), "mg/dL")


@pytest.mark.parametrize(
    "lab, unit, expected",
    [
        ("total_bilirubin", "umol/L", ("0", "1000")),
        ("total_bilirubin", "mg/dL", ("0", "58.47")),  # 1000 / 17.1, rounded inward
        ("creatinine", "mg/dL", ("0.12", "22.62")),  # 10 / 88.4 and 2000 / 88.4
        ("albumin", "g/dL", ("0.5", "7")),
        ("hemoglobin", "g/dL", ("2", "25")),
        ("platelets", "/uL", ("0", "2000000")),
    ],
)
def test_plausible_ranges_per_unit_come_from_the_si_ranges_through_the_factor(lab, unit, expected):
    low, high = elig_settings.plausible_range(lab, unit)
    assert (units.plain(low), units.plain(high)) == expected


def test_every_unit_range_converts_into_the_si_range():
    for name, lab in units.LABS.items():
        si_low, si_high, _ = elig_settings.PLAUSIBLE_RANGES[name]
        for unit in lab.units:
            low, high = elig_settings.plausible_range(name, unit.code)
            assert si_low <= units.to_si(name, low, unit.code) <= si_high
            assert si_low <= units.to_si(name, high, unit.code) <= si_high


def test_child_pugh_and_in09_bilirubin_use_one_table():
    table = elig_settings.BILIRUBIN
    for row in table.values():
        assert units.to_si("total_bilirubin", row["mg/dL"], "mg/dL") == row["umol/L"]
    cp = elig_settings.CHILD_PUGH
    assert (cp["bilirubin_2_from"], cp["bilirubin_3_above"]) == (Decimal("34.2"), Decimal("51.3"))
    in09 = elig_settings.LAB_LIMITS["total_bilirubin"]["max"]
    assert in09 == 3 * table["uln"]["umol/L"] == cp["bilirubin_3_above"]
    # < 2, 2-3, > 3 mg/dL: the same points whichever unit the value was reported in
    for mg_dl, points in [("1.99", 1), ("2.0", 2), ("3.0", 2), ("3.01", 3)]:
        assert bilirubin_points(units.to_si("total_bilirubin", Decimal(mg_dl), "mg/dL")) == points


# --- labs as reported through the service ---------------------------------------------------------


def test_bilirubin_2_5_mg_dl_is_42_8_umol_l_and_2_child_pugh_points(subject, coordinator):
    assessment = make_eligible_assessment(
        subject,
        by=coordinator,
        sign=False,
        total_bilirubin_reported=Decimal("2.5"),
        total_bilirubin_unit="mg/dL",
    )
    assessment.refresh_from_db()
    assert assessment.total_bilirubin_reported == Decimal("2.50")
    assert assessment.total_bilirubin_unit == "mg/dL"
    assert assessment.total_bilirubin == Decimal("42.8")
    assert bilirubin_points(assessment.total_bilirubin) == 2
    assert str(child_pugh(assessment)) == "Child-Pugh A6"  # 2 + four components at 1 point
    in09 = services.evaluate_eligibility(assessment).result("IN09")
    assert in09.outcome == PASS  # 42.8 µmol/L ≤ 51.3 (3 × ULN = 3 mg/dL)


def test_a_lab_given_in_si_alone_is_a_value_reported_in_the_si_unit(subject, coordinator):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    save(subject, coordinator, reason="Platelets re-tested", platelets=Decimal("150"))
    assessment = EligibilityAssessment.objects.get()
    assert (assessment.platelets_reported, assessment.platelets_unit) == (Decimal("150"), "10*9/L")
    assert assessment.platelets == Decimal("150.0")


def test_changing_only_the_unit_recomputes_the_si_value(subject, coordinator):
    make_eligible_assessment(subject, by=coordinator, sign=False)  # bilirubin 0.89 mg/dL
    save(subject, coordinator, reason="The report is in µmol/L", total_bilirubin_unit="umol/L")
    assessment = EligibilityAssessment.objects.get()
    assert assessment.total_bilirubin_reported == Decimal("0.89")
    assert assessment.total_bilirubin == Decimal("0.9")


@pytest.mark.parametrize(
    "lab, value, unit, words",
    [
        ("total_bilirubin", "250", "mg/dL", "between 0 and 58.47 mg/dL; check the unit"),
        ("albumin", "39.5", "g/dL", "between 0.5 and 7 g/dL"),
        ("hemoglobin", "128", "g/dL", "between 2 and 25 g/dL"),
        ("creatinine", "78", "mg/dL", "between 0.12 and 22.62 mg/dL"),
        ("platelets", "160000", "10*9/L", "between 0 and 2000 × 10⁹/L"),
    ],
)
def test_a_value_implausible_in_its_unit_is_refused_by_the_service(
    subject, coordinator, lab, value, unit, words
):
    data = eligible_data(
        subject, **{units.reported_field(lab): Decimal(value), units.unit_field(lab): unit}
    )
    with pytest.raises(ValidationError) as refused:
        services.save_assessment(subject, user=coordinator, data=data)
    message = " ".join(refused.value.message_dict[units.reported_field(lab)])
    assert "is not plausible" in message and words in message
    assert not EligibilityAssessment.objects.exists()


def test_the_same_number_is_plausible_in_another_unit(subject, coordinator):
    assessment = make_eligible_assessment(
        subject,
        by=coordinator,
        sign=False,
        total_bilirubin_reported=Decimal("250"),
        total_bilirubin_unit="umol/L",
    )
    assert assessment.total_bilirubin == Decimal("250.0")  # plausible, and fails IN09
    assert services.evaluate_eligibility(assessment).result("IN09").outcome == FAIL


def test_a_value_needs_its_unit_and_the_unit_must_be_the_labs(subject, coordinator):
    data = eligible_data(subject, albumin_reported=Decimal("39.5"), albumin_unit="")
    with pytest.raises(ValidationError) as refused:
        services.save_assessment(subject, user=coordinator, data=data)
    assert refused.value.message_dict["albumin_unit"] == ["Give the unit the laboratory reported."]
    data = eligible_data(subject, albumin_reported=Decimal("39.5"), albumin_unit="mg/dL")
    with pytest.raises(ValidationError) as refused:
        services.save_assessment(subject, user=coordinator, data=data)
    assert "not a valid choice" in " ".join(refused.value.message_dict["albumin_unit"])
    assert not EligibilityAssessment.objects.exists()


def test_an_si_value_that_contradicts_the_reported_one_is_refused(subject, coordinator):
    data = eligible_data(subject)
    data.update(total_bilirubin_reported=Decimal("2.5"), total_bilirubin_unit="mg/dL")
    data["total_bilirubin"] = Decimal("2.5")
    with pytest.raises(ValidationError) as refused:
        services.save_assessment(subject, user=coordinator, data=data)
    assert "2.5 mg/dL is 42.8 µmol/L" in " ".join(refused.value.message_dict["total_bilirubin"])


def test_a_failing_lab_names_the_value_as_reported(subject, coordinator):
    assessment = make_eligible_assessment(
        subject,
        by=coordinator,
        sign=False,
        total_bilirubin_reported=Decimal("3.5"),
        total_bilirubin_unit="mg/dL",
    )
    reason = services.evaluate_eligibility(assessment).result("IN09").reason
    assert "Total bilirubin (µmol/L) 59.9 (reported 3.5 mg/dL) fails" in reason


# --- the Child-Pugh B7 subject is not an eligible A6 any more ------------------------------------


@pytest.fixture
def logged_in(client, coordinator):
    client.force_login(coordinator)
    return client


def b7_post(subject, unit: str) -> dict:
    """Slight ascites (2 points) and a bilirubin of 2.5 as typed, in ``unit``."""
    data = eligible_data(subject, ascites="slight")
    return crf_post(data, total_bilirubin_reported="2.5", total_bilirubin_unit=unit)


def test_bilirubin_2_5_mg_dl_typed_on_the_crf_makes_a_b7_not_an_eligible_a6(
    client, logged_in, subject, investigator
):
    page = logged_in.get(edit_url(subject)).content.decode()
    assert 'name="total_bilirubin_reported"' in page and 'name="total_bilirubin_unit"' in page
    assert '<option value="mg/dL">mg/dL</option>' in page
    assert 'name="total_bilirubin"' not in page  # the SI value is computed, not typed

    response = logged_in.post(edit_url(subject), b7_post(subject, "mg/dL"))

    assert response.status_code == 302, response.content.decode()[:3000]
    assessment = EligibilityAssessment.objects.get(subject=subject)
    assert assessment.total_bilirubin == Decimal("42.8")
    evaluation = services.evaluate_eligibility(assessment)
    assert str(evaluation.child_pugh) == "Child-Pugh B7"
    assert evaluation.status == services.Status.NOT_ELIGIBLE
    assert evaluation.result("IN06").outcome == FAIL
    assert "saved as 42.8 µmol/L (SI)" in logged_in.get(edit_url(subject)).content.decode()
    client.force_login(investigator)
    detail = client.get(edit_url(subject, "")).content.decode()
    assert "Child-Pugh B7" in detail and "Not eligible" in detail
    assert "Sign: eligible" not in detail and "Confirm screen failure" in detail
    with pytest.raises(services.SignatureRefused, match="Not eligible.*IN06"):
        services.sign_eligibility(assessment, user=investigator, password=PASSWORD)


def test_the_same_2_5_in_umol_l_is_the_a6_it_used_to_be_taken_for(logged_in, subject):
    response = logged_in.post(edit_url(subject), b7_post(subject, "umol/L"))
    assert response.status_code == 302
    evaluation = services.evaluate_eligibility(EligibilityAssessment.objects.get())
    assert str(evaluation.child_pugh) == "Child-Pugh A6" and evaluation.is_eligible


@pytest.mark.parametrize(
    "lab, value, unit, words",
    [
        ("total_bilirubin", "250", "mg/dL", "between 0 and 58.47 mg/dL"),
        ("albumin", "39.5", "g/dL", "between 0.5 and 7 g/dL"),
    ],
)
def test_the_web_form_refuses_a_value_implausible_in_its_unit_and_keeps_it(
    logged_in, subject, lab, value, unit, words
):
    post = crf_post(
        eligible_data(subject),
        **{units.reported_field(lab): value, units.unit_field(lab): unit},
    )
    response = logged_in.post(edit_url(subject), post)
    assert response.status_code == 200
    assert words in " ".join(response.context["form"].errors[units.reported_field(lab)])
    html = response.content.decode()
    assert "Nothing was saved" in html
    assert f'value="{value}"' in html and f'<option value="{unit}" selected>' in html
    assert not EligibilityAssessment.objects.exists()


# --- existing data: the migration -----------------------------------------------------------------


def test_the_migration_fills_the_labs_as_reported_and_old_signatures_stay_valid(
    subject, coordinator, investigator
):
    """An assessment saved before units existed (values in SI, no value as reported) and signed
    then (version 1 of the signed data): the migration fills the values as reported and their SI
    units, with a history row and its reason; the old signature still covers the data."""
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    blank = {f: None for f in units.REPORTED_FIELDS} | {f: "" for f in units.UNIT_FIELDS}
    behind_the_audit(EligibilityAssessment).filter(pk=assessment.pk).update(**blank)
    assessment = selectors.get_assessment(subject)
    old = EligibilitySignature(
        assessment=assessment,
        kind=SignatureKind.ELIGIBLE,
        signer=investigator,
        signer_name="Old Signer",
        signed_at=timezone.now() - timedelta(days=1),
        meaning=services.ELIGIBLE_MEANING,
        reference_date=days_ago(0),
        result_summary="Eligible",
        data_hash=data_hash(assessment, version=1),
        data_version=1,
    )
    old.save()  # as recorded before the migration
    before = assessment.history.count()

    state = MigrationExecutor(connection).loader.project_state(
        ("eligibility", "0004_fill_labs_as_reported")
    )
    migration = importlib.import_module("eligibility.migrations.0004_fill_labs_as_reported")
    migration.fill_labs_as_reported(state.apps, None)

    assessment = selectors.get_assessment(subject)
    for name, lab in units.LABS.items():
        assert getattr(assessment, units.reported_field(name)) == getattr(assessment, name)
        assert getattr(assessment, units.unit_field(name)) == lab.si_unit.code
    assert assessment.history.count() == before + 1
    latest = assessment.history.order_by("-history_date").first()
    assert "migration eligibility 0004" in latest.history_change_reason
    assert latest.albumin_unit == "g/L"
    assert selectors.valid_signature(assessment) == old
    assert services.randomization_factors(subject, days_ago(0))
    # A change through the service voids it, as any signature.
    save(subject, coordinator, reason="ECOG re-assessed", ecog=1)
    old.refresh_from_db()
    assert old.void and "ECOG re-assessed" in old.void_reason


# --- prior systemic therapy rows ------------------------------------------------------------------


def test_adjuvant_sorafenib_is_prior_systemic_therapy_for_in04(subject, coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    assert services.evaluate_eligibility(assessment).result("IN04").outcome == MISSING
    rows = services.save_prior_therapies(
        assessment, user=coordinator, rows=make_prior_therapy_rows()
    )
    [row] = rows
    assert (row.agent, row.setting, row.assessment) == ("sorafenib", "adjuvant", assessment)
    in04 = services.evaluate_eligibility(assessment).result("IN04")
    assert in04.outcome == FAIL
    assert "Prior systemic therapy for HCC: Sorafenib (adjuvant), " in in04.reason
    assert services.evaluate_eligibility(assessment).status == services.Status.NOT_ELIGIBLE


def test_a_row_fails_in04_whatever_the_answer_and_the_setting(subject, coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=None
    )
    services.save_prior_therapies(
        assessment,
        user=coordinator,
        rows=make_prior_therapy_rows(
            {"agent": "other", "agent_other": "Capecitabine", "setting": "neoadjuvant"},
            {"agent": "lenvatinib", "setting": "advanced", "end_date": None},
        ),
    )
    reason = services.evaluate_eligibility(assessment).result("IN04").reason
    assert "Capecitabine (neoadjuvant)" in reason and "Lenvatinib (advanced disease)" in reason
    assert "to ongoing" in reason


def test_no_with_rows_is_an_entry_error_and_saves_nothing(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    with pytest.raises(ValidationError) as refused:
        services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    message = refused.value.message_dict["prior_systemic_therapy"][0]
    assert message.startswith("The answer is no, but 1 prior systemic therapy row(s) are listed")
    assert "answer yes, or remove the rows" in message
    assert not PriorTherapy.objects.exists()


@pytest.mark.parametrize(
    "change, words",
    [
        (
            {"end_date": days_ago(600)},
            "Prior therapy 1: end date: The end date is before the start",
        ),
        ({"start_date": days_ago(-2)}, "Prior therapy 1: start date: This date is in the future."),
        ({"start_date": None}, "Prior therapy 1: start date: Give the start date."),
        ({"agent": "other"}, "Prior therapy 1: Other agent: Name the agent"),
        ({"agent_other": "Sorafenib 400 mg"}, "only when the agent is 'Other'"),
        ({"setting": "palliative"}, "Prior therapy 1: setting: Value 'palliative' is not"),
    ],
)
def test_a_bad_row_is_refused_with_a_sentence(subject, coordinator, change, words):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    with pytest.raises(ValidationError) as refused:
        services.save_prior_therapies(
            assessment, user=coordinator, rows=make_prior_therapy_rows(**change)
        )
    assert words in " ".join(refused.value.message_dict["prior_therapies"])
    assert not PriorTherapy.objects.exists()


def test_only_data_entry_at_the_site_writes_rows(subject, coordinator, site, other_coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    for user in (make_user(Role.MONITOR, site), other_coordinator):
        with pytest.raises(AccessDenied):
            services.save_prior_therapies(assessment, user=user, rows=make_prior_therapy_rows())
    with pytest.raises(DomainError, match="not prior therapy fields: dose"):
        services.save_prior_therapies(
            assessment, user=coordinator, rows=make_prior_therapy_rows(dose="400 mg")
        )
    assert not PriorTherapy.objects.exists()


def test_a_row_change_voids_the_signature_which_covers_the_rows(subject, coordinator, investigator):
    assessment = make_eligible_assessment(subject, by=coordinator, investigator=investigator)
    signature = selectors.active_signature(assessment)
    assert signed_data(assessment)["prior_therapies"] == []
    change = {
        "data": {"prior_systemic_therapy": True},
        "prior_therapies": make_prior_therapy_rows(),
    }
    with pytest.raises(ReasonRequired):  # a signed assessment: a change needs a reason
        services.save_assessment(subject, user=coordinator, **change)
    assert not PriorTherapy.objects.exists()
    services.save_assessment(
        subject,
        user=coordinator,
        **change,
        reason="Adjuvant sorafenib found in the hospital records",
    )
    signature.refresh_from_db()
    assert signature.void
    assert signature.void_reason == (
        "The assessment was changed: Adjuvant sorafenib found in the hospital records"
    )
    assessment = selectors.get_assessment(subject)
    [row] = signed_data(assessment)["prior_therapies"]
    assert row["agent"] == "sorafenib" and row["setting"] == "adjuvant"
    with pytest.raises(services.NotRandomizable, match="voided by a change"):
        services.randomization_factors(subject, days_ago(0))


def test_a_change_of_the_rows_alone_voids_the_signature_with_its_reason(
    subject, coordinator, investigator
):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    signature = services.confirm_screen_failure(
        assessment, user=investigator, password=PASSWORD, on_date=days_ago(0)
    )
    assert "IN04: Prior systemic therapy for HCC: Sorafenib (adjuvant)" in signature.meaning
    [saved] = PriorTherapy.objects.all()
    kept = {"id": saved.pk, **make_prior_therapy_rows()[0]}
    added = make_prior_therapy_rows(agent="lenvatinib", setting="advanced")
    with pytest.raises(ReasonRequired):
        services.save_prior_therapies(assessment, user=coordinator, rows=[kept, *added])
    assert PriorTherapy.objects.count() == 1 and selectors.valid_signature(assessment)
    services.save_prior_therapies(
        assessment, user=coordinator, rows=[kept, *added], reason="Lenvatinib also given"
    )
    signature.refresh_from_db()
    assert signature.void and signature.void_reason.endswith("Lenvatinib also given")


def test_the_signature_covers_the_rows_even_when_changed_behind_the_services(
    subject, coordinator, investigator
):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    signature = services.confirm_screen_failure(
        assessment, user=investigator, password=PASSWORD, on_date=days_ago(0)
    )
    assert selectors.valid_signature(assessment) == signature
    behind_the_audit(PriorTherapy).filter(assessment=assessment).update(setting="advanced")
    assert selectors.valid_signature(selectors.get_assessment(subject)) is None


def test_changing_and_removing_rows_needs_a_reason_and_is_in_the_audit_trail(subject, coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    saved = services.save_prior_therapies(
        assessment,
        user=coordinator,
        rows=make_prior_therapy_rows({}, {"agent": "lenvatinib", "setting": "advanced"}),
    )
    [first] = [row for row in saved if row.agent == "sorafenib"]
    keep_first = {"id": first.pk, **make_prior_therapy_rows()[0]}
    changed = {**keep_first, "end_date": days_ago(100)}
    with pytest.raises(ReasonRequired):
        services.save_prior_therapies(assessment, user=coordinator, rows=[changed])
    assert PriorTherapy.objects.count() == 2
    services.save_prior_therapies(
        assessment, user=coordinator, rows=[changed], reason="End date from the discharge letter"
    )
    [row] = PriorTherapy.objects.all()
    assert row.pk == first.pk and row.end_date == days_ago(100)

    trail = subject_audit_trail(subject, coordinator)
    rows = {(r["record"], r["what"]): r for r in trail if r["record"].startswith("Prior therapy")}
    assert set(rows) == {
        ("Prior therapy: Sorafenib", "Created"),
        ("Prior therapy: Sorafenib", "Changed"),
        ("Prior therapy: Lenvatinib", "Created"),
        ("Prior therapy: Lenvatinib", "Deleted"),
    }
    changed = rows["Prior therapy: Sorafenib", "Changed"]
    deleted = rows["Prior therapy: Lenvatinib", "Deleted"]
    assert changed["reason"] == deleted["reason"] == "End date from the discharge letter"
    [change] = changed["changes"]
    assert change["field"] == "End date" and change["new"] == days_ago(100).isoformat()
    assert all(r["who"] == coordinator for r in rows.values())
    eligibility_trail = selectors.assessment_audit_trail(assessment)
    assert sum(r["record"].startswith("Prior therapy") for r in eligibility_trail) == 4


def test_rows_are_scoped_like_their_subject(subject, coordinator, other_coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    assert access.scope_to_user(PriorTherapy.objects.all(), coordinator).count() == 1
    assert access.scope_to_user(PriorTherapy.objects.all(), other_coordinator).count() == 0


# --- the rows on the CRF page ---------------------------------------------------------------------


def test_rows_entered_on_the_crf_page_under_the_question(logged_in, subject):
    html = logged_in.get(edit_url(subject)).content.decode()
    question = html.index('name="prior_systemic_therapy"')
    rows = html.index('name="prior_therapies-0-agent"')
    assert question < rows < html.index('name="measurable_lesions"')
    data = crf_post(eligible_data(subject, prior_systemic_therapy=True))
    [row] = make_prior_therapy_rows()
    response = logged_in.post(edit_url(subject), {**data, **prior_therapy_post([row])})
    assert response.status_code == 302, response.content.decode()[:3000]
    [saved] = PriorTherapy.objects.all()
    assert (saved.agent, saved.setting, saved.start_date) == (
        "sorafenib",
        "adjuvant",
        row["start_date"],
    )
    detail = logged_in.get(edit_url(subject, "")).content.decode()
    assert "Sorafenib (adjuvant)" in detail and "IN04" in detail and "Not eligible" in detail


def test_a_blank_extra_row_is_ignored_and_a_post_without_rows_keeps_them(logged_in, subject):
    blank = {"agent": "", "agent_other": "", "setting": "", "start_date": "", "end_date": ""}
    data = crf_post(eligible_data(subject))
    response = logged_in.post(edit_url(subject), {**data, **prior_therapy_post([blank])})
    assert response.status_code == 302
    assert not PriorTherapy.objects.exists()
    assert services.evaluate_eligibility(EligibilityAssessment.objects.get()).is_eligible


def test_a_bad_row_on_the_page_saves_nothing_and_keeps_what_was_typed(logged_in, subject):
    data = crf_post(eligible_data(subject, prior_systemic_therapy=True))
    [row] = make_prior_therapy_rows(end_date=days_ago(700))
    response = logged_in.post(edit_url(subject), {**data, **prior_therapy_post([row])})
    assert response.status_code == 200
    formset = response.context["prior_therapies"]
    assert formset.forms[0].errors["end_date"] == ["The end date is before the start date."]
    html = response.content.decode()
    assert "Nothing was saved" in html and days_ago(700).isoformat() in html
    assert not EligibilityAssessment.objects.exists() and not PriorTherapy.objects.exists()


def test_no_with_a_row_on_the_page_is_an_error_on_the_question(logged_in, subject):
    data = crf_post(eligible_data(subject, prior_systemic_therapy=False))
    response = logged_in.post(
        edit_url(subject), {**data, **prior_therapy_post(make_prior_therapy_rows())}
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors["prior_systemic_therapy"])
    assert "The answer is no, but 1 prior systemic therapy row(s) are listed" in errors
    assert not EligibilityAssessment.objects.exists() and not PriorTherapy.objects.exists()


def test_removing_a_row_on_the_page_with_a_reason(logged_in, subject, coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    [row] = services.save_prior_therapies(
        assessment, user=coordinator, rows=make_prior_therapy_rows()
    )
    data = crf_post(eligible_data(subject), reason="Sorafenib was for renal cancer, not HCC")
    posted = {"id": row.pk, **make_prior_therapy_rows()[0], "DELETE": True}
    response = logged_in.post(edit_url(subject), {**data, **prior_therapy_post([posted], saved=1)})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not PriorTherapy.objects.exists()
    deleted = PriorTherapy.history.get(history_type="-")
    assert deleted.history_change_reason == "Sorafenib was for renal cancer, not HCC"
    assert services.evaluate_eligibility(selectors.get_assessment(subject)).is_eligible


# --- export ---------------------------------------------------------------------------------------


def test_the_rows_are_a_child_group_of_the_eligibility_export(subject, coordinator):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    before = timezone.now()
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    [form] = [f for f in registry.export_forms() if f.name == "eligibility"]
    [group] = [g for g in form.children if g.name == "prior_therapies"]
    assert group.model_class() is PriorTherapy
    assert PriorTherapy._meta.get_field(group.parent_field).related_model is EligibilityAssessment
    record = form.queryset().get()
    [row] = records.child_rows(group, record)
    assert row == {
        "agent": "sorafenib",
        "agent_other": "",
        "setting": "adjuvant",
        "start_date": days_ago(550),
        "end_date": days_ago(180),
    }
    # The SI value carries its unit; the value as reported and its unit are items too.
    items = {item.name: item for item in form.items}
    assert items["total_bilirubin"].unit == "umol/L" and items["inr"].unit == ""
    assert dict(items["total_bilirubin_unit"].codelist) == {"umol/L": "µmol/L", "mg/dL": "mg/dL"}
    # A change of a row counts as a change of its assessment (updated_since).
    assert form.queryset().filter(records.changed_since(form, before)).exists()


def test_the_sponsor_api_lists_the_rows_of_each_assessment(subject, coordinator, data_manager):
    """Through the registry, in the sponsor's API (the exports app's endpoints)."""
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=data_manager).key}")
    response = client.get("/api/v1/eligibility/")
    assert response.status_code == 200, response.content
    [exported] = response.json()["results"]
    assert [(r["agent"], r["setting"]) for r in exported["prior_therapies"]] == [
        ("sorafenib", "adjuvant")
    ]
    assert (exported["total_bilirubin_reported"], exported["total_bilirubin_unit"]) == (
        0.89,
        "mg/dL",
    )
    response = client.get("/api/v1/eligibility/", {"format": "csv"})
    assert response.status_code == 200
    [line] = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert json.loads(line["prior_therapies"])[0]["agent"] == "sorafenib"


def test_a_randomizable_subject_costs_no_query_for_its_absent_rows(subject, coordinator):
    """The randomization check reads the signature with whether rows exist, in one query."""
    make_eligible_assessment(subject, by=coordinator)
    with CaptureQueriesContext(connection) as queries:
        services.randomization_factors(subject, days_ago(0))
    assert len(queries.captured_queries) == 1


def test_the_admin_shows_each_lab_with_its_unit_and_the_rows_read_only(
    client, subject, coordinator, data_manager, django_user_model
):
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, prior_systemic_therapy=True
    )
    services.save_prior_therapies(assessment, user=coordinator, rows=make_prior_therapy_rows())
    client.force_login(data_manager)
    page = client.get(f"/admin/eligibility/eligibilityassessment/{assessment.pk}/change/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "Total bilirubin, as reported" in html and "Total bilirubin, unit reported" in html
    assert "Total bilirubin (µmol/L)" in html and "15.2" in html  # the SI value, read only
    assert "Sorafenib (adjuvant)" in html
    client.force_login(django_user_model.objects.create_superuser("root", "r@example.org", "pw"))
    listing = client.get("/admin/eligibility/priortherapy/")
    assert listing.status_code == 200 and "Sorafenib" in listing.content.decode()
    assert client.get("/admin/eligibility/priortherapy/add/").status_code == 403
