"""Every criterion: met, not met and missing data, with the protocol's boundaries.

The assessment is built in memory from a complete eligible record with one change, and evaluated
against the planned randomization date (today). Outcomes are "for eligibility": PASS (inclusion
met / exclusion absent), FAIL (inclusion not met / exclusion present), MISSING.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from eligibility.criteria import (
    CRITERIA,
    EXCLUSION,
    INCLUSION,
    CriterionOutcome,
    child_pugh,
    label,
    months_before,
)
from eligibility.models import EligibilityAssessment
from eligibility.services import Status, evaluate_eligibility
from tests.builders import eligible_data, make_subject, site_today

PASS, FAIL, MISSING = CriterionOutcome.PASS, CriterionOutcome.FAIL, CriterionOutcome.MISSING


def ago(days: int) -> date:
    return site_today() - timedelta(days=days)


def build(subject, **overrides) -> EligibilityAssessment:
    return EligibilityAssessment(subject=subject, **eligible_data(subject, **overrides))


def result(subject, code, **overrides):
    return evaluate_eligibility(build(subject, **overrides)).result(code)


@pytest.fixture
def female(site, coordinator):
    return make_subject(site, by=coordinator, sex="F")


def test_registry_has_every_protocol_criterion():
    codes = [c.code for c in CRITERIA]
    assert codes == [f"IN{n:02d}" for n in range(1, 13)] + [f"EX{n:02d}" for n in range(1, 23)]
    assert all(c.kind == (INCLUSION if c.code.startswith("IN") else EXCLUSION) for c in CRITERIA)
    for criterion in CRITERIA:
        assert criterion.text and criterion.fields
        for field in criterion.fields:
            assert label(field)  # every declared field exists (on the CRF or the subject)


def test_complete_record_is_eligible(subject):
    evaluation = evaluate_eligibility(build(subject))
    assert evaluation.status == Status.ELIGIBLE, evaluation.summary()
    assert all(r.outcome == PASS and r.reason for r in evaluation.results)


# --- IN01 age at consent: 18 and 75 inclusive -----------------------------------------------------


@pytest.mark.parametrize(
    "age, outcome",
    [(17, FAIL), (18, PASS), (45, PASS), (75, PASS), (76, FAIL)],
    ids=lambda v: str(v),
)
def test_in01_age_at_consent(site, coordinator, age, outcome):
    consent = ago(10)
    # Birthday exactly on the consent date: the subject has just turned ``age``; a day later
    # in the year (not yet had the birthday) would be a year younger.
    dob = consent.replace(year=consent.year - age)
    subject = make_subject(site, by=coordinator, date_of_birth=dob, consent_date=consent)
    r = result(subject, "IN01")
    assert r.outcome == outcome and f"Aged {age}" in r.reason


def test_in01_day_before_18th_birthday_is_17(site, coordinator):
    consent = ago(10)
    dob = consent.replace(year=consent.year - 18) + timedelta(days=1)
    subject = make_subject(site, by=coordinator, date_of_birth=dob, consent_date=consent)
    assert result(subject, "IN01").outcome == FAIL


def test_in01_age_from_age_at_screening(site, coordinator):
    subject = make_subject(site, by=coordinator, date_of_birth=None, age_at_screening=76)
    assert result(subject, "IN01").outcome == FAIL


def test_in01_and_in12_missing_without_consent(site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    assert result(subject, "IN01").outcome == MISSING
    assert result(subject, "IN12").outcome == MISSING


# --- criteria driven by CRF fields: (code, overrides, outcome, words in the sentence) -------------

CASES = [
    # IN02 diagnosis
    ("IN02", {"diagnosis_basis": "cytological"}, PASS, "Cytological"),
    ("IN02", {"diagnosis_basis": "clinical", "cirrhosis": True}, PASS, "cirrhotic"),
    ("IN02", {"diagnosis_basis": "clinical", "cirrhosis": False}, FAIL, "only in cirrhosis"),
    ("IN02", {"diagnosis_basis": "clinical", "cirrhosis": None}, MISSING, "Cirrhosis"),
    ("IN02", {"diagnosis_basis": ""}, MISSING, "Basis of the HCC diagnosis"),
    # IN03 BCLC
    ("IN03", {"bclc_stage": "B"}, PASS, "stage B"),
    ("IN03", {"bclc_stage": "A"}, FAIL, "stage A"),
    ("IN03", {"bclc_stage": "D"}, FAIL, "stage D"),
    (
        "IN03",
        {"unsuitable_for_radical_therapy": False, "progressed_after_local_therapy": True},
        PASS,
        "progressed",
    ),
    (
        "IN03",
        {"unsuitable_for_radical_therapy": False, "progressed_after_local_therapy": False},
        FAIL,
        "neither",
    ),
    (
        "IN03",
        {"unsuitable_for_radical_therapy": None, "progressed_after_local_therapy": None},
        MISSING,
        "Unsuitable",
    ),
    ("IN03", {"bclc_stage": ""}, MISSING, "BCLC stage"),
    # IN04 prior systemic therapy
    # A "yes" lacks its rows (agent, setting, dates); a row fails IN04, whatever the answer:
    # tests/test_lab_units_and_prior_therapy.py.
    ("IN04", {"prior_systemic_therapy": True}, MISSING, "Prior systemic therapies"),
    ("IN04", {"prior_systemic_therapy": None}, MISSING, "Prior systemic"),
    # IN05 measurable lesions and the target lesion
    ("IN05", {"measurable_lesions": 1}, PASS, "1 measurable"),
    ("IN05", {"measurable_lesions": 0}, FAIL, "at least 1"),
    ("IN05", {"measurable_lesions": None}, MISSING, "measurable lesions"),
    (
        "IN05",
        {"target_lesion_locally_treated": True, "target_lesion_progressed": True},
        PASS,
        "since PD",
    ),
    (
        "IN05",
        {"target_lesion_locally_treated": True, "target_lesion_progressed": False},
        FAIL,
        "another target lesion",
    ),
    ("IN05", {"target_lesion_locally_treated": True}, MISSING, "Radiological progression"),
    ("IN05", {"target_lesion_locally_treated": None}, MISSING, "Target lesion"),
    # IN06 Child-Pugh A (5-6) and no hepatic encephalopathy history
    ("IN06", {"ascites": "slight"}, PASS, "A6"),  # 1+1+1+2+1 = 6
    ("IN06", {"ascites": "slight", "albumin": Decimal("30")}, FAIL, "B7"),  # 6 + 1 = 7
    ("IN06", {"hepatic_encephalopathy_history": True}, FAIL, "encephalopathy"),
    ("IN06", {"hepatic_encephalopathy_history": None}, MISSING, "History of hepatic"),
    ("IN06", {"ascites": ""}, MISSING, "Ascites"),
    ("IN06", {"inr": None}, MISSING, "INR"),
    # IN07 ECOG 0-1
    ("IN07", {"ecog": 1}, PASS, "ECOG 1"),
    ("IN07", {"ecog": 2}, FAIL, "ECOG 2"),
    ("IN07", {"ecog": 4}, FAIL, "ECOG 4"),
    ("IN07", {"ecog": None}, MISSING, "ECOG"),
    # IN08 life expectancy >= 12 weeks
    ("IN08", {"life_expectancy_weeks": 12}, PASS, "12 weeks"),
    ("IN08", {"life_expectancy_weeks": 11}, FAIL, "11 weeks"),
    ("IN08", {"life_expectancy_weeks": None}, MISSING, "life expectancy"),
    # IN09 labs (defaults from eligibility.settings) and their recency (14 days)
    ("IN09", {"anc": Decimal("1.5")}, PASS, "within"),
    ("IN09", {"anc": Decimal("1.49")}, FAIL, "neutrophil"),
    ("IN09", {"platelets": Decimal("74.9")}, FAIL, "Platelets"),
    ("IN09", {"hemoglobin": Decimal("89")}, FAIL, "Hemoglobin"),
    ("IN09", {"total_bilirubin": Decimal("51.4")}, FAIL, "bilirubin"),
    ("IN09", {"alt": Decimal("200")}, PASS, "within"),
    ("IN09", {"alt": Decimal("200.1")}, FAIL, "ALT"),
    ("IN09", {"ast": Decimal("250")}, FAIL, "AST"),
    ("IN09", {"inr": Decimal("2.1")}, FAIL, "INR"),
    ("IN09", {"albumin": Decimal("27.9")}, FAIL, "Albumin"),
    ("IN09", {"creatinine": Decimal("200")}, PASS, "within"),  # clearance 92 suffices
    ("IN09", {"creatinine": Decimal("200"), "creatinine_clearance": Decimal("40")}, FAIL, "renal"),
    ("IN09", {"creatinine": None, "creatinine_clearance": Decimal("50")}, PASS, "within"),
    ("IN09", {"creatinine": None, "creatinine_clearance": None}, MISSING, "creatinine"),
    ("IN09", {"hemoglobin": None}, MISSING, "Hemoglobin"),
    ("IN09", {"lab_date": ago(14)}, PASS, "within"),
    ("IN09", {"lab_date": ago(15)}, FAIL, "repeat"),
    ("IN09", {"lab_date": None}, MISSING, "Date of the screening blood samples"),
    ("IN09", {"planned_randomization_date": None}, MISSING, "planned randomization date"),
    # IN10 HBV DNA < 500 IU/mL, HCV RNA > 10^3 copies/mL excludes, co-infection excludes
    ("IN10", {"hbv_dna_iu_ml": 499}, PASS, "499"),
    ("IN10", {"hbv_dna_iu_ml": 500}, FAIL, "must be below 500"),
    ("IN10", {"hbv_dna_iu_ml": None}, MISSING, "HBV DNA"),
    ("IN10", {"anti_hbv_therapy": False}, FAIL, "without effective anti-HBV"),
    ("IN10", {"anti_hbv_therapy": None}, MISSING, "anti-HBV therapy"),
    (
        "IN10",
        {"hbsag": "negative", "hbcab": "negative", "hbv_dna_iu_ml": None, "anti_hbv_therapy": None},
        PASS,
        "negative",
    ),
    ("IN10", {"hbsag": "", "hbcab": "negative"}, MISSING, "HBsAg"),
    ("IN10", {"hbsag": "negative", "hbcab": ""}, MISSING, "HBcAb"),
    (
        "IN10",
        {"hbsag": "negative", "anti_hcv": "positive", "hcv_rna_copies_ml": 1000},
        PASS,
        "1000",
    ),
    (
        "IN10",
        {"hbsag": "negative", "anti_hcv": "positive", "hcv_rna_copies_ml": 1001},
        FAIL,
        "> 1000",
    ),
    ("IN10", {"anti_hcv": "positive", "hcv_rna_copies_ml": None}, MISSING, "HCV RNA"),
    ("IN10", {"anti_hcv": ""}, MISSING, "Anti-HCV"),
    ("IN10", {"anti_hcv": "positive", "hcv_rna_copies_ml": 200}, FAIL, "co-infection"),
    ("IN10", {"anti_hcv": "positive", "hcv_rna_copies_ml": 0}, PASS, "HCV RNA 0"),
    # IN11 (male subject): partner of childbearing potential must agree to contraception
    (
        "IN11",
        {"partner_childbearing_potential": True, "contraception_agreed": True},
        PASS,
        "agrees",
    ),
    ("IN11", {"partner_childbearing_potential": True, "contraception_agreed": False}, FAIL, "no"),
    (
        "IN11",
        {"partner_childbearing_potential": True, "contraception_agreed": None},
        MISSING,
        "Agrees",
    ),
    ("IN11", {"partner_childbearing_potential": None}, MISSING, "Partner"),
    # IN12 consent and compliance
    ("IN12", {"good_compliance_expected": False}, FAIL, "compliance"),
    ("IN12", {"good_compliance_expected": None}, MISSING, "compliance"),
    # EX01 histology
    ("EX01", {"excluded_histology": "icc"}, FAIL, "cholangiocellular"),
    ("EX01", {"excluded_histology": "fibrolamellar"}, FAIL, "fibrolamellar"),
    ("EX01", {"excluded_histology": ""}, MISSING, "histology"),
    # EX02 other malignancy within 5 years
    (
        "EX02",
        {"other_malignancy_5y": True, "other_malignancy_cured_in_situ": True},
        PASS,
        "allowed",
    ),
    ("EX02", {"other_malignancy_5y": True, "other_malignancy_cured_in_situ": False}, FAIL, "not"),
    ("EX02", {"other_malignancy_5y": True}, MISSING, "cured localized"),
    ("EX02", {"other_malignancy_5y": None}, MISSING, "Other malignancy"),
    # EX03 local therapy 4 weeks, bone radiotherapy 2 weeks, Chinese medicine 2 weeks
    ("EX03", {"last_local_therapy_date": ago(28)}, FAIL, "within 28 days"),
    ("EX03", {"last_local_therapy_date": ago(29)}, PASS, "more than 28 days"),
    ("EX03", {"last_local_therapy_date": None}, MISSING, "Date of the most recent one"),
    ("EX03", {"local_therapy_received": None, "last_local_therapy_date": None}, MISSING, "hepatic"),
    (
        "EX03",
        {"bone_radiotherapy_received": True, "last_bone_radiotherapy_date": ago(14)},
        FAIL,
        "bone radiotherapy",
    ),
    (
        "EX03",
        {"bone_radiotherapy_received": True, "last_bone_radiotherapy_date": ago(15)},
        PASS,
        "more than 14 days",
    ),
    (
        "EX03",
        {"chinese_medicine_received": True, "last_chinese_medicine_date": ago(14)},
        FAIL,
        "Chinese medicine",
    ),
    (
        "EX03",
        {"chinese_medicine_received": True, "last_chinese_medicine_date": ago(15)},
        PASS,
        "Chinese medicine",
    ),
    ("EX03", {"treatment_toxicity_unrecovered": True}, FAIL, "Not recovered"),
    ("EX03", {"treatment_toxicity_unrecovered": None}, MISSING, "Not recovered"),
    ("EX03", {"planned_randomization_date": None}, MISSING, "planned randomization date"),
    # EX06 GI hemorrhage within 6 months; red sign
    (
        "EX06",
        {"gi_hemorrhage_history": True, "last_gi_hemorrhage_date": None},
        MISSING,
        "GI hemorrhage",
    ),
    ("EX06", {"red_sign_history": True}, FAIL, "red sign"),
    ("EX06", {"high_bleeding_risk": True, "red_sign_history": None}, MISSING, "gastroscopy"),
    ("EX06", {"high_bleeding_risk": True, "red_sign_history": False}, PASS, "No red sign"),
    ("EX06", {"high_bleeding_risk": None}, MISSING, "bleeding risk"),
    # EX11 major surgery 4 weeks
    ("EX11", {"major_surgery_received": True, "last_major_surgery_date": ago(28)}, FAIL, "within"),
    ("EX11", {"major_surgery_received": True, "last_major_surgery_date": ago(29)}, PASS, "more"),
    ("EX11", {"major_surgery_received": None}, MISSING, "medium or major surgery"),
    # EX14 live vaccine 30 days
    ("EX14", {"live_vaccine_received": True, "last_live_vaccine_date": ago(30)}, FAIL, "within"),
    ("EX14", {"live_vaccine_received": True, "last_live_vaccine_date": ago(31)}, PASS, "more"),
    (
        "EX14",
        {"live_vaccine_received": True, "last_live_vaccine_date": None},
        MISSING,
        "live vaccine",
    ),
    # EX22 investigator's judgement
    (
        "EX22",
        {"investigator_judges_unsuitable": True, "unsuitable_reason": "Lives 900 km away"},
        FAIL,
        "900 km",
    ),
    ("EX22", {"investigator_judges_unsuitable": None}, MISSING, "unsuitable"),
]


@pytest.mark.parametrize(
    "code, overrides, outcome, words",
    CASES,
    ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CASES)],
)
def test_criterion(subject, code, overrides, outcome, words):
    r = result(subject, code, **overrides)
    assert r.outcome == outcome, r.reason
    assert words.lower() in r.reason.lower()
    evaluation = evaluate_eligibility(build(subject, **overrides))
    expected = {PASS: None, FAIL: Status.NOT_ELIGIBLE, MISSING: Status.INCOMPLETE}[outcome]
    if expected:
        assert evaluation.status == expected


# --- exclusions decided by one yes/no fact --------------------------------------------------------

SIMPLE = [
    ("EX04", "prior_anti_pd1_therapy"),
    ("EX05", "uncontrolled_effusion"),
    ("EX07", "fistula_grade3"),
    ("EX08", "excluded_tumor_thrombus"),
    ("EX09", "serious_cardiovascular_disease"),
    ("EX10", "bleeding_disorder"),
    ("EX12", "cns_metastases"),
    ("EX13", "non_healing_wound"),
    ("EX15", "active_autoimmune_disease"),
    ("EX16", "ild_pneumonitis_or_tb"),
    ("EX17", "serious_infection"),
    ("EX18", "hiv"),
    ("EX19", "transplant"),
    ("EX20", "gi_absorption_problem"),
    ("EX21", "antibody_allergy"),
]


@pytest.mark.parametrize("code, field", SIMPLE)
@pytest.mark.parametrize(
    "value, outcome, met", [(False, PASS, False), (True, FAIL, True), (None, MISSING, None)]
)
def test_simple_exclusion(subject, code, field, value, outcome, met):
    r = result(subject, code, **{field: value})
    assert (r.outcome, r.met) == (outcome, met)
    assert r.reason


# --- IN11 for a woman: serum pregnancy test within 7 days before randomization --------------------


@pytest.mark.parametrize(
    "overrides, outcome, words",
    [
        ({"pregnancy_test_date": ago(7)}, PASS, "7 day(s)"),
        ({"pregnancy_test_date": ago(0)}, PASS, "0 day(s)"),
        ({"pregnancy_test_date": ago(8)}, FAIL, "8 days before"),
        ({"pregnancy_test_result": "positive"}, FAIL, "Positive"),
        ({"pregnancy_test_date": None, "pregnancy_test_result": ""}, MISSING, "pregnancy test"),
        ({"contraception_agreed": False}, FAIL, "contraception"),
        (
            {"childbearing_potential": False, "pregnancy_test_date": None},
            PASS,
            "not of childbearing",
        ),
        ({"childbearing_potential": None}, MISSING, "childbearing"),
        ({"planned_randomization_date": None}, MISSING, "planned randomization date"),
    ],
)
def test_in11_woman(female, overrides, outcome, words):
    data = {
        "childbearing_potential": True,
        "pregnancy_test_date": ago(3),
        "pregnancy_test_result": "negative",
        **overrides,
    }
    r = result(female, "IN11", **data)
    assert r.outcome == outcome, r.reason
    assert words.lower() in r.reason.lower()


def test_in11_pregnancy_window_counts_from_the_actual_randomization_date(female):
    assessment = build(
        female,
        childbearing_potential=True,
        pregnancy_test_date=ago(7),
        pregnancy_test_result="negative",
    )
    assert evaluate_eligibility(assessment).result("IN11").outcome == PASS
    later = evaluate_eligibility(assessment, on_date=site_today() + timedelta(days=1))
    assert later.result("IN11").outcome == FAIL
    assert later.status == Status.NOT_ELIGIBLE


# --- EX06: calendar months -----------------------------------------------------------------------


def test_ex06_six_calendar_months(subject):
    boundary = months_before(site_today(), 6)
    inside = result(subject, "EX06", gi_hemorrhage_history=True, last_gi_hemorrhage_date=boundary)
    outside = result(
        subject,
        "EX06",
        gi_hemorrhage_history=True,
        last_gi_hemorrhage_date=boundary - timedelta(days=1),
    )
    assert (inside.outcome, outside.outcome) == (FAIL, PASS)


@pytest.mark.parametrize(
    "day, months, expected",
    [
        (date(2024, 8, 31), 6, date(2024, 2, 29)),
        (date(2023, 8, 31), 6, date(2023, 2, 28)),
        (date(2024, 3, 15), 6, date(2023, 9, 15)),
        (date(2024, 1, 10), 1, date(2023, 12, 10)),
    ],
)
def test_months_before(day, months, expected):
    assert months_before(day, months) == expected


# --- Child-Pugh score: each component's boundaries ------------------------------------------------


@pytest.mark.parametrize(
    "changes, score",
    [
        ({}, 5),
        # bilirubin < 2, 2-3, > 3 mg/dL = < 34.2, 34.2-51.3, > 51.3 µmol/L (settings.BILIRUBIN)
        ({"total_bilirubin": Decimal("34.1")}, 5),
        ({"total_bilirubin": Decimal("34.2")}, 6),
        ({"total_bilirubin": Decimal("51.3")}, 6),
        ({"total_bilirubin": Decimal("51.4")}, 7),
        ({"albumin": Decimal("35.1")}, 5),
        ({"albumin": Decimal("35")}, 6),
        ({"albumin": Decimal("28")}, 6),
        ({"albumin": Decimal("27.9")}, 7),
        ({"inr": Decimal("1.69")}, 5),
        ({"inr": Decimal("1.70")}, 6),
        ({"inr": Decimal("2.30")}, 6),
        ({"inr": Decimal("2.31")}, 7),
        ({"ascites": "moderate"}, 7),
        ({"encephalopathy": "grade_1_2"}, 6),
        ({"encephalopathy": "grade_3_4", "ascites": "moderate", "albumin": Decimal("20")}, 11),
    ],
)
def test_child_pugh_score(subject, changes, score):
    cp = child_pugh(build(subject, **changes))
    assert cp.score == score
    assert cp.grade == ("A" if score <= 6 else "B" if score <= 9 else "C")


def test_child_pugh_needs_every_component(subject):
    assert child_pugh(build(subject, encephalopathy="")) is None


# --- overall result ------------------------------------------------------------------------------


def test_overall_not_eligible_lists_failures_even_with_data_missing(subject):
    evaluation = evaluate_eligibility(build(subject, ecog=2, cns_metastases=True, hiv=None))
    assert evaluation.status == Status.NOT_ELIGIBLE
    assert [r.code for r in evaluation.failed] == ["IN07", "EX12"]
    assert [r.code for r in evaluation.missing] == ["EX18"]
    assert "IN07, EX12" in evaluation.summary()


def test_overall_incomplete_lists_missing(subject):
    evaluation = evaluate_eligibility(build(subject, hiv=None, lab_date=None))
    assert evaluation.status == Status.INCOMPLETE
    assert [r.code for r in evaluation.missing] == ["IN09", "EX18"]
    assert "IN09, EX18" in evaluation.summary()


def test_overall_incomplete_without_stratification(subject):
    evaluation = evaluate_eligibility(build(subject, extrahepatic_spread=None))
    assert evaluation.status == Status.INCOMPLETE
    assert evaluation.stratification_missing == ("Extrahepatic spread",)


def test_exclusion_met_means_excluded(subject):
    r = result(subject, "EX12", cns_metastases=True)
    assert r.kind == EXCLUSION and r.met is True and r.outcome == FAIL and not r.passes
    r = result(subject, "IN07", ecog=2)
    assert r.kind == INCLUSION and r.met is False and r.outcome == FAIL


def test_lab_limits_are_settings(subject, settings):
    settings.ELIGIBILITY_SETTINGS = {"lab_limits": {"platelets": {"min": Decimal("100")}}}
    assert result(subject, "IN09", platelets=Decimal("90")).outcome == FAIL
    settings.ELIGIBILITY_SETTINGS = {}
    assert result(subject, "IN09", platelets=Decimal("90")).outcome == PASS
