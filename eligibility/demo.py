"""Demo eligibility: most consented subjects signed eligible, some confirmed screen failures,
some assessments still being filled in.

Everything goes through ``eligibility.services`` as the site's coordinator (data entry) and the
site's investigator (signatures, with the demo password). Signed-eligible subjects stay in
screening with a planned randomization date of today and labs a few days old, so the
randomization seeder (next in ``SEEDERS``) can randomize them today.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from core.roles import Role
from subjects.models import SubjectStatus

from . import services
from .models import (
    Ascites,
    BCLCStage,
    DiagnosisBasis,
    Encephalopathy,
    ExcludedHistology,
    Serology,
)

# The exclusion questions a subject with none of those findings answers "no" to (the demo and the
# test data start from these).
NO_EXCLUSION_FINDINGS = dict.fromkeys(
    (
        "bone_radiotherapy_received",
        "chinese_medicine_received",
        "treatment_toxicity_unrecovered",
        "prior_anti_pd1_therapy",
        "uncontrolled_effusion",
        "gi_hemorrhage_history",
        "high_bleeding_risk",
        "fistula_grade3",
        "excluded_tumor_thrombus",
        "serious_cardiovascular_disease",
        "bleeding_disorder",
        "major_surgery_received",
        "cns_metastases",
        "non_healing_wound",
        "live_vaccine_received",
        "active_autoimmune_disease",
        "ild_pneumonitis_or_tb",
        "serious_infection",
        "hiv",
        "transplant",
        "gi_absorption_problem",
        "antibody_allergy",
        "investigator_judges_unsuitable",
    ),
    False,
)

# Why demo screen failures fail: CRF changes over an eligible record.
SCREEN_FAILURES = [
    ("ECOG 2", {"ecog": 2}),
    ("Child-Pugh B", {"albumin": Decimal("26.0"), "total_bilirubin": Decimal("41.0")}),
    ("HBV DNA too high", {"hbv_dna_iu_ml": 2400}),
    ("CNS metastases", {"cns_metastases": True}),
    ("prior sorafenib", {"prior_systemic_therapy": True}),
    ("BCLC A, resectable", {"bclc_stage": BCLCStage.A}),
]


def _password(ctx, user) -> str:
    return next(pw for username, _, _, pw in ctx.credentials if username == user.username)


def _eligible_data(ctx, subject) -> dict:
    rng, today = ctx.rng, ctx.today
    hbv = rng.random() < 0.8  # most HCC in China is HBV-related
    locoregional = rng.random() < 0.5
    data = {
        "planned_randomization_date": today,
        "diagnosis_basis": rng.choice(list(DiagnosisBasis)),
        "cirrhosis": True,
        "excluded_histology": ExcludedHistology.NONE,
        "bclc_stage": rng.choice([BCLCStage.B, BCLCStage.C, BCLCStage.C]),
        "unsuitable_for_radical_therapy": True,
        "progressed_after_local_therapy": locoregional,
        "prior_systemic_therapy": False,
        "measurable_lesions": rng.randint(1, 5),
        "target_lesion_locally_treated": False,
        "ascites": rng.choice([Ascites.NONE, Ascites.NONE, Ascites.SLIGHT]),
        "encephalopathy": Encephalopathy.NONE,
        "hepatic_encephalopathy_history": False,
        "ecog": rng.choice([0, 0, 1]),
        "life_expectancy_weeks": rng.choice([16, 24, 26, 52]),
        "lab_date": max(subject.consent_date, today - timedelta(days=rng.randint(1, 6))),
        "anc": Decimal(rng.randint(18, 60)) / 10,
        "platelets": Decimal(rng.randint(90, 300)),
        "hemoglobin": Decimal(rng.randint(100, 160)),
        "total_bilirubin": Decimal(rng.randint(60, 300)) / 10,
        "alt": Decimal(rng.randint(15, 120)),
        "ast": Decimal(rng.randint(18, 140)),
        "creatinine": Decimal(rng.randint(50, 120)),
        "creatinine_clearance": Decimal(rng.randint(60, 120)),
        "inr": Decimal(rng.randint(95, 140)) / 100,
        "albumin": Decimal(rng.randint(360, 460)) / 10,
        "hbsag": Serology.POSITIVE if hbv else Serology.NEGATIVE,
        "hbcab": Serology.POSITIVE if hbv else Serology.NEGATIVE,
        "hbv_dna_iu_ml": rng.randint(0, 450) if hbv else None,
        "anti_hbv_therapy": True if hbv else None,
        "anti_hcv": Serology.NEGATIVE,
        "contraception_agreed": True,
        "good_compliance_expected": True,
        "other_malignancy_5y": False,
        "local_therapy_received": locoregional,
        "last_local_therapy_date": today - timedelta(days=rng.randint(45, 400))
        if locoregional
        else None,
        **NO_EXCLUSION_FINDINGS,
        "macrovascular_invasion": rng.random() < 0.3,
        "extrahepatic_spread": rng.random() < 0.4,
        "prior_locoregional_therapy": locoregional,
    }
    if subject.sex == "F":
        wocbp = rng.random() < 0.3
        data["childbearing_potential"] = wocbp
        if wocbp:
            data["pregnancy_test_date"] = max(subject.consent_date, today - timedelta(days=2))
            data["pregnancy_test_result"] = Serology.NEGATIVE
    else:
        data["partner_childbearing_potential"] = rng.random() < 0.3
    return data


def seed(ctx):
    consented = [s for s in ctx.subjects if s.is_consented and s.status == SubjectStatus.SCREENING]
    counts = {"eligible": 0, "screen failed": 0, "in progress": 0}
    for i, subject in enumerate(consented):
        coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
        investigator = ctx.site_user(Role.INVESTIGATOR, subject.site)
        data = _eligible_data(ctx, subject)
        if i % 7 == 5:  # still being filled in: labs and hepatitis pending
            for name in ("anc", "platelets", "hemoglobin", "hbsag", "hbcab", "anti_hcv"):
                data.pop(name, None)
            data.pop("hbv_dna_iu_ml", None)
            data.pop("anti_hbv_therapy", None)
            services.save_assessment(subject, user=coordinator, data=data)
            counts["in progress"] += 1
            continue
        failure = SCREEN_FAILURES[(i // 7) % len(SCREEN_FAILURES)] if i % 7 == 6 else None
        if failure:
            data.update(failure[1])
        assessment = services.save_assessment(subject, user=coordinator, data=data)
        if failure:
            services.confirm_screen_failure(
                assessment,
                user=investigator,
                password=_password(ctx, investigator),
                on_date=ctx.today,
            )
            subject.refresh_from_db()
            counts["screen failed"] += 1
        else:
            services.sign_eligibility(
                assessment, user=investigator, password=_password(ctx, investigator)
            )
            counts["eligible"] += 1
    ctx.write(
        f"Eligibility: {counts['eligible']} signed eligible, {counts['screen failed']} confirmed "
        f"screen failures, {counts['in progress']} assessments in progress"
    )
