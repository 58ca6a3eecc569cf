"""The criteria registry: IN01-IN12 and EX01-EX22, each with its protocol text, the CRF fields it
uses and its evaluation (``criteria_checks``; the types and outcomes: ``criterion``)."""

from __future__ import annotations

from .criteria_checks import (
    LAB_FIELDS,
    ex01_histology,
    ex02_other_malignancy,
    ex03_recent_therapy,
    ex06_gi_hemorrhage,
    ex11_major_surgery,
    ex14_live_vaccine,
    ex22_investigator,
    in01_age,
    in02_diagnosis,
    in03_bclc,
    in04_no_systemic,
    in05_measurable,
    in06_child_pugh,
    in07_ecog,
    in08_life_expectancy,
    in09_labs,
    in10_hepatitis,
    in11_pregnancy,
    in12_consent,
)
from .criterion import (
    CHILD_PUGH_FIELDS,
    EXCLUSION,
    INCLUSION,
    ChildPugh,
    Context,
    Criterion,
    CriterionOutcome,
    CriterionResult,
    bilirubin_points,
    child_pugh,
    label,
    months_before,
    simple_exclusion,
    window_start,
)

# What callers import from here: the registry, and the types and helpers its users need.
__all__ = [
    "BY_CODE",
    "CRITERIA",
    "EXCLUSION",
    "INCLUSION",
    "LAB_FIELDS",
    "ChildPugh",
    "Context",
    "Criterion",
    "CriterionOutcome",
    "CriterionResult",
    "bilirubin_points",
    "child_pugh",
    "label",
    "months_before",
    "window_start",
]

# --- the registry -------------------------------------------------------------------------------

CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "IN01",
        INCLUSION,
        "Age of 18-75 years (inclusive), male or female.",
        ("subject.date_of_birth", "subject.age_at_screening", "subject.consent_date"),
        in01_age,
    ),
    Criterion(
        "IN02",
        INCLUSION,
        "Histological or cytological diagnosis of HCC or clinical diagnosis of HCC in cirrhotic "
        "patients per the AASLD guideline.",
        ("diagnosis_basis", "cirrhosis"),
        in02_diagnosis,
    ),
    Criterion(
        "IN03",
        INCLUSION,
        "BCLC stage B or C, and unsuitable for radical surgical and/or local therapy, or has "
        "progressed following surgical and/or local therapy.",
        ("bclc_stage", "unsuitable_for_radical_therapy", "progressed_after_local_therapy"),
        in03_bclc,
    ),
    Criterion(
        "IN04",
        INCLUSION,
        "No previous systemic therapy for HCC (chemotherapy, anti-angiogenic or other molecular "
        "targeted therapy, immunotherapy containing CTLA-4, PD-1/PD-L1 antibodies).",
        ("prior_systemic_therapy", "prior_therapies"),
        in04_no_systemic,
    ),
    Criterion(
        "IN05",
        INCLUSION,
        "≥ 1 measurable lesion per RECIST v1.1; the target lesion has not been treated locally, or "
        "is in a previously treated area but determined as PD radiologically.",
        ("measurable_lesions", "target_lesion_locally_treated", "target_lesion_progressed"),
        in05_measurable,
    ),
    Criterion(
        "IN06",
        INCLUSION,
        "Child-Pugh class A, with no history of hepatic encephalopathy.",
        (*CHILD_PUGH_FIELDS, "hepatic_encephalopathy_history"),
        in06_child_pugh,
    ),
    Criterion("IN07", INCLUSION, "ECOG performance status 0 or 1.", ("ecog",), in07_ecog),
    Criterion(
        "IN08",
        INCLUSION,
        "Predicted life expectancy ≥ 12 weeks.",
        ("life_expectancy_weeks",),
        in08_life_expectancy,
    ),
    Criterion(
        "IN09",
        INCLUSION,
        "Adequate hematologic and end-organ function (limits: protocol settings).",
        ("lab_date", *LAB_FIELDS),
        in09_labs,
        windowed=True,
    ),
    Criterion(
        "IN10",
        INCLUSION,
        "If HBsAg (+) and/or HBcAb (+), HBV DNA < 500 IU/mL and effective anti-HBV therapy "
        "throughout the study; anti-HCV positive with HCV RNA > 10³ copies/mL excluded; HBV/HCV "
        "co-infection (HBsAg and HCV RNA positive) excluded.",
        ("hbsag", "hbcab", "hbv_dna_iu_ml", "anti_hbv_therapy", "anti_hcv", "hcv_rna_copies_ml"),
        in10_hepatitis,
    ),
    Criterion(
        "IN11",
        INCLUSION,
        "Women of childbearing potential: negative serum pregnancy test within 7 days before "
        "randomization and reliable contraception during the trial and 60 days after the last "
        "dose; men with partners of childbearing potential agree to reliable contraception.",
        (
            "subject.sex",
            "childbearing_potential",
            "pregnancy_test_date",
            "pregnancy_test_result",
            "partner_childbearing_potential",
            "contraception_agreed",
        ),
        in11_pregnancy,
        windowed=True,
    ),
    Criterion(
        "IN12",
        INCLUSION,
        "Voluntary participation, written informed consent signed, good compliance.",
        ("subject.consent_date", "good_compliance_expected"),
        in12_consent,
    ),
    Criterion(
        "EX01",
        EXCLUSION,
        "Known cholangiocellular carcinoma (ICC) or mixed cell carcinoma, sarcomatoid HCC and "
        "hepatic fibrolamellar carcinoma.",
        ("excluded_histology",),
        ex01_histology,
    ),
    Criterion(
        "EX02",
        EXCLUSION,
        "Malignancy other than HCC within 5 years prior to screening, except cured localized "
        "malignancies (cervical carcinoma in situ, skin basal cell carcinoma, prostate carcinoma "
        "in situ).",
        ("other_malignancy_5y", "other_malignancy_cured_in_situ"),
        ex02_other_malignancy,
    ),
    Criterion(
        "EX03",
        EXCLUSION,
        "Hepatic surgery, local therapy or investigational treatment for HCC within 4 weeks, "
        "palliative radiotherapy for bone metastases within 2 weeks, or anti-liver-cancer Chinese "
        "medicine within 2 weeks prior to randomization; or not recovered (to CTCAE ≤ grade 1, "
        "alopecia apart) from side effects of any such treatment.",
        (
            "local_therapy_received",
            "last_local_therapy_date",
            "bone_radiotherapy_received",
            "last_bone_radiotherapy_date",
            "chinese_medicine_received",
            "last_chinese_medicine_date",
            "treatment_toxicity_unrecovered",
        ),
        ex03_recent_therapy,
        windowed=True,
    ),
    Criterion(
        "EX04",
        EXCLUSION,
        "Prior other anti-PD-1 antibody therapy or other PD-1/PD-L1 immunotherapy.",
        ("prior_anti_pd1_therapy",),
        simple_exclusion(
            "prior_anti_pd1_therapy",
            "Prior PD-1/PD-L1 immunotherapy.",
            "No prior PD-1/PD-L1 immunotherapy.",
        ),
    ),
    Criterion(
        "EX05",
        EXCLUSION,
        "Uncontrolled pericardial or pleural effusion, or clinically obvious moderate/severe "
        "pleural effusion at screening.",
        ("uncontrolled_effusion",),
        simple_exclusion(
            "uncontrolled_effusion",
            "Uncontrolled or clinically obvious effusion.",
            "No uncontrolled effusion.",
        ),
    ),
    Criterion(
        "EX06",
        EXCLUSION,
        "GI hemorrhage within 6 months prior to randomization; history of red sign at gastroscopy "
        "(gastroscopy required for portal hypertension with high bleeding risk).",
        (
            "gi_hemorrhage_history",
            "last_gi_hemorrhage_date",
            "high_bleeding_risk",
            "red_sign_history",
        ),
        ex06_gi_hemorrhage,
        windowed=True,
    ),
    Criterion(
        "EX07",
        EXCLUSION,
        "Grade ≥ 3 (CTCAE v5.0) GI or non-GI fistula at present.",
        ("fistula_grade3",),
        simple_exclusion(
            "fistula_grade3", "Grade ≥ 3 fistula at present.", "No grade ≥ 3 fistula."
        ),
    ),
    Criterion(
        "EX08",
        EXCLUSION,
        "Tumor thrombus in the portal vein main trunk involving the contralateral branch or the "
        "superior mesenteric vein; tumor thrombus in the inferior vena cava.",
        ("excluded_tumor_thrombus",),
        simple_exclusion(
            "excluded_tumor_thrombus",
            "Excluded tumor thrombus present.",
            "No excluded tumor thrombus.",
        ),
    ),
    Criterion(
        "EX09",
        EXCLUSION,
        "Serious cardiovascular and cerebrovascular diseases.",
        ("serious_cardiovascular_disease",),
        simple_exclusion(
            "serious_cardiovascular_disease",
            "Serious cardiovascular or cerebrovascular disease.",
            "No serious cardiovascular or cerebrovascular disease.",
        ),
    ),
    Criterion(
        "EX10",
        EXCLUSION,
        "Major bleeding and coagulation disorders or other obvious evidence of bleeding tendency.",
        ("bleeding_disorder",),
        simple_exclusion(
            "bleeding_disorder",
            "Bleeding or coagulation disorder.",
            "No bleeding or coagulation disorder.",
        ),
    ),
    Criterion(
        "EX11",
        EXCLUSION,
        "Medium to large surgery within 4 weeks prior to randomization (diagnostic biopsy apart).",
        ("major_surgery_received", "last_major_surgery_date"),
        ex11_major_surgery,
        windowed=True,
    ),
    Criterion(
        "EX12",
        EXCLUSION,
        "Central nervous system metastases.",
        ("cns_metastases",),
        simple_exclusion("cns_metastases", "CNS metastases.", "No CNS metastases."),
    ),
    Criterion(
        "EX13",
        EXCLUSION,
        "Serious, non-healing or dehiscing wound, active ulcer or untreated bone fracture.",
        ("non_healing_wound",),
        simple_exclusion(
            "non_healing_wound",
            "Non-healing wound, active ulcer or untreated fracture.",
            "No non-healing wound, active ulcer or untreated fracture.",
        ),
    ),
    Criterion(
        "EX14",
        EXCLUSION,
        "Live vaccine within 30 days prior to randomization.",
        ("live_vaccine_received", "last_live_vaccine_date"),
        ex14_live_vaccine,
        windowed=True,
    ),
    Criterion(
        "EX15",
        EXCLUSION,
        "Active autoimmune disease requiring systemic treatment in the past 2 years (replacement "
        "therapy, inhaled or topical corticosteroids allowed).",
        ("active_autoimmune_disease",),
        simple_exclusion(
            "active_autoimmune_disease",
            "Active autoimmune disease needing systemic treatment.",
            "No active autoimmune disease needing systemic treatment.",
        ),
    ),
    Criterion(
        "EX16",
        EXCLUSION,
        "History of interstitial lung disease or non-infectious pneumonitis (unless radiation-"
        "induced), or of active tuberculosis.",
        ("ild_pneumonitis_or_tb",),
        simple_exclusion(
            "ild_pneumonitis_or_tb",
            "Interstitial lung disease, pneumonitis or active TB.",
            "No interstitial lung disease, pneumonitis or active TB.",
        ),
    ),
    Criterion(
        "EX17",
        EXCLUSION,
        "Serious acute or chronic infection requiring systemic antibacterial, antifungal or "
        "antiviral therapy at screening (viral hepatitis apart).",
        ("serious_infection",),
        simple_exclusion(
            "serious_infection",
            "Serious infection needing systemic therapy.",
            "No serious infection needing systemic therapy.",
        ),
    ),
    Criterion(
        "EX18",
        EXCLUSION,
        "Known history of HIV infection.",
        ("hiv",),
        simple_exclusion("hiv", "Known HIV infection.", "No known HIV infection."),
    ),
    Criterion(
        "EX19",
        EXCLUSION,
        "Prior allogeneic stem cell or solid organ transplantation.",
        ("transplant",),
        simple_exclusion(
            "transplant",
            "Prior allogeneic transplantation.",
            "No prior allogeneic transplantation.",
        ),
    ),
    Criterion(
        "EX20",
        EXCLUSION,
        "Inability to swallow tablets, malabsorption syndrome or any condition affecting GI "
        "absorption.",
        ("gi_absorption_problem",),
        simple_exclusion(
            "gi_absorption_problem",
            "Cannot take oral tablets reliably.",
            "Can swallow and absorb tablets.",
        ),
    ),
    Criterion(
        "EX21",
        EXCLUSION,
        "Known serious allergy to any monoclonal antibody or targeted anti-angiogenic drug.",
        ("antibody_allergy",),
        simple_exclusion(
            "antibody_allergy",
            "Serious allergy to an antibody or anti-angiogenic drug.",
            "No serious allergy to antibodies or anti-angiogenic drugs.",
        ),
    ),
    Criterion(
        "EX22",
        EXCLUSION,
        "Other unsuitable subjects as per the investigators.",
        ("investigator_judges_unsuitable", "unsuitable_reason"),
        ex22_investigator,
    ),
)

BY_CODE = {c.code: c for c in CRITERIA}
assert len([c for c in CRITERIA if c.kind == INCLUSION]) == 12
assert len([c for c in CRITERIA if c.kind == EXCLUSION]) == 22
