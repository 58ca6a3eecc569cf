"""Demo eligibility: most consented subjects signed eligible, some screen failures, some CRFs
still being filled in.

Each CRF follows its subject's storyline (``ctx.plan``) through ``eligibility.services``, so the
demo has the audit trail sites make; sites report labs in their own units (``SITE_UNITS``) so the
conversions are exercised. A large demo (``ctx.bulk``) writes the same outcome in bulk.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from core.demo import bulk_insert, check_rules, chunks
from core.errors import DomainError
from core.roles import Role
from subjects import demo as subjects_demo

from . import services, units
from .models import (
    Ascites,
    BCLCStage,
    DiagnosisBasis,
    EligibilityAssessment,
    EligibilitySignature,
    Encephalopathy,
    ExcludedHistology,
    PriorTherapy,
    PriorTherapyAgent,
    Serology,
    SignatureKind,
    TherapySetting,
)
from .signed_data import data_hash

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

# Why demo screen failures fail: CRF changes over an eligible record (labs as reported).
SCREEN_FAILURES = [
    ("ECOG 2", {"ecog": 2}),
    (
        "Child-Pugh B",
        {
            "albumin_reported": Decimal("2.6"),
            "albumin_unit": "g/dL",
            "total_bilirubin_reported": Decimal("2.4"),
            "total_bilirubin_unit": "mg/dL",
        },
    ),
    ("HBV DNA too high", {"hbv_dna_iu_ml": 2400}),
    ("CNS metastases", {"cns_metastases": True}),
    ("prior sorafenib", {"prior_systemic_therapy": True}),
    ("BCLC A, resectable", {"bclc_stage": BCLCStage.A}),
]
# The prior therapy row of a "yes" to prior systemic therapy: adjuvant sorafenib after resection.
PRIOR_SORAFENIB = {
    "agent": PriorTherapyAgent.SORAFENIB,
    "agent_other": "",
    "setting": TherapySetting.ADJUVANT,
}

# The units each demo site's laboratory reports (by the site's position): SI, or conventional.
CONVENTIONAL_UNITS = {
    "platelets": "10*3/uL",
    "hemoglobin": "g/dL",
    "total_bilirubin": "mg/dL",
    "creatinine": "mg/dL",
    "albumin": "g/dL",
}
SITE_UNITS = ({}, CONVENTIONAL_UNITS)


def _as_reported(ctx, subject, data: dict) -> dict:
    """The SI lab values of ``data`` as the subject's site laboratory reports them."""
    position = next((i for i, site in enumerate(ctx.sites) if site.pk == subject.site_id), 0)
    conventional = SITE_UNITS[position % len(SITE_UNITS)]
    reported = {}
    for name, value in data.items():
        if name not in units.LABS:
            reported[name] = value
            continue
        code = conventional.get(name, units.LABS[name].si_unit.code)
        reported[units.reported_field(name)] = units.from_si(name, value, code)
        reported[units.unit_field(name)] = code
    return reported


def prior_therapies_of(ctx, data: dict) -> list[dict] | None:
    """The prior therapy rows of the demo data: one when the answer is yes."""
    if not data.get("prior_systemic_therapy"):
        return None
    start = data.get("planned_randomization_date", ctx.today) - timedelta(days=500)
    return [{**PRIOR_SORAFENIB, "start_date": start, "end_date": start + timedelta(days=360)}]


def _in_memory(ctx, subject, data: dict) -> EligibilityAssessment:
    """The assessment the services would save from ``data`` (SI values computed, rows set)."""
    assessment = EligibilityAssessment(subject=subject)
    for name, value in services.lab_values(assessment, data).items():
        setattr(assessment, name, value)
    rows = prior_therapies_of(ctx, data) or []
    assessment.use_prior_therapies(PriorTherapy(assessment=assessment, **row) for row in rows)
    return assessment


def _password(ctx, user) -> str:
    return next(pw for username, _, _, pw in ctx.credentials if username == user.username)


def _eligible_data(ctx, subject, on=None) -> dict:
    """CRF data that evaluate eligible with ``on`` (default: today) as the planned randomization
    date: the windows (labs, pregnancy test, prior therapy) are counted back from it."""
    rng, today = ctx.rng, on or ctx.today
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
    return _as_reported(ctx, subject, data)


def _leave_pending(data: dict) -> None:
    """An assessment still being filled in: labs and hepatitis results pending."""
    for name in ("anc", "platelets", "hemoglobin"):
        data.pop(units.reported_field(name), None)
        data.pop(units.unit_field(name), None)
    for name in ("hbsag", "hbcab", "anti_hcv", "hbv_dna_iu_ml", "anti_hbv_therapy"):
        data.pop(name, None)


def seed(ctx):
    if ctx.bulk:
        _seed_bulk(ctx)
        return
    counts = {"eligible": 0, "screen failed": 0, "in progress": 0}
    failures = 0
    for subject in ctx.subjects:
        plan = ctx.plan[subject.pk]
        stage = plan["stage"]
        if stage == subjects_demo.AWAITING_CONSENT:
            continue
        coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
        investigator = ctx.site_user(Role.INVESTIGATOR, subject.site)
        # The planned randomization date: the past day, or the site's today (the randomization
        # service dates a randomization with the site's date: ahead of UTC in the evening).
        on = plan.get("randomized_on") or timezone.localdate(timezone.now(), subject.site.zoneinfo)
        data = _eligible_data(ctx, subject, on=on)
        if stage == subjects_demo.CRF_IN_PROGRESS:  # labs and hepatitis pending
            _leave_pending(data)
            services.save_assessment(subject, user=coordinator, data=data)
            counts["in progress"] += 1
            continue
        failure = stage == subjects_demo.SCREEN_FAILED
        if failure:
            data = _first_failing(ctx, subject, data, start=failures % len(SCREEN_FAILURES))
            failures += 1
        assessment = services.save_assessment(
            subject,
            user=coordinator,
            data=data,
            prior_therapies=prior_therapies_of(ctx, data),
        )
        if failure:
            services.confirm_screen_failure(
                assessment,
                user=investigator,
                password=_password(ctx, investigator),
                on_date=plan["decided_on"],
            )
            subject.refresh_from_db()
            counts["screen failed"] += 1
        elif stage == subjects_demo.RANDOMIZED:
            # Signed on its day, before the randomization (the service stamps the present).
            bulk_insert(
                EligibilitySignature,
                [_bulk_signature(ctx, assessment, plan)],
                user=investigator,
            )
            counts["eligible"] += 1
        else:
            services.sign_eligibility(
                assessment, user=investigator, password=_password(ctx, investigator)
            )
            counts["eligible"] += 1
    ctx.write(
        f"Eligibility: {counts['eligible']} signed eligible, {counts['screen failed']} confirmed "
        f"screen failures, {counts['in progress']} assessments in progress"
    )


# --- the bulk path -------------------------------------------------------------------------------


def _seed_bulk(ctx):
    """Each subject's CRF and sign-off as its storyline (``ctx.plan``) says, written in bulk with
    the values the services give: the data evaluate eligible (or not eligible, for a screen
    failure) on the planned randomization date, and the signature holds the evaluation's summary
    and the hash of the signed data. The stratification factors go into the plan."""
    counts = {"eligible": 0, "screen failed": 0, "in progress": 0}
    for part in chunks(ctx.subjects):
        assessments, signatures, rows = [], [], []
        for subject in part:
            plan = ctx.plan[subject.pk]
            if plan["stage"] == subjects_demo.AWAITING_CONSENT:
                continue
            on = plan.get("randomized_on") or plan.get("decided_on") or ctx.today
            data = _eligible_data(ctx, subject, on=on)
            if plan["stage"] == subjects_demo.CRF_IN_PROGRESS:
                _leave_pending(data)
                counts["in progress"] += 1
            elif plan["stage"] == subjects_demo.SCREEN_FAILED:
                data = _failing(ctx, subject, data)
                counts["screen failed"] += 1
            else:
                counts["eligible"] += 1
            assessment = _in_memory(ctx, subject, data)
            check_rules(assessment)
            assessments.append(assessment)
            rows += assessment.prior_therapy_list()
            if plan["stage"] != subjects_demo.CRF_IN_PROGRESS:
                signatures.append(_bulk_signature(ctx, assessment, plan))
        bulk_insert(
            EligibilityAssessment,
            assessments,
            user_of=lambda a: ctx.site_user(Role.SITE_STAFF, a.subject.site),
        )
        for row in rows:
            row.assessment_id = row.assessment.pk  # inserted now
            check_rules(row)
        bulk_insert(
            PriorTherapy,
            rows,
            user_of=lambda r: ctx.site_user(Role.SITE_STAFF, r.assessment.subject.site),
        )
        bulk_insert(EligibilitySignature, signatures, user_of=lambda s: s.signer)
        ctx.progress(f"Eligibility: {sum(counts.values())} assessments")
    ctx.write(
        f"Eligibility: {counts['eligible']} signed eligible, {counts['screen failed']} confirmed "
        f"screen failures, {counts['in progress']} assessments in progress"
    )


def _first_failing(ctx, subject, data: dict, start: int) -> dict:
    """The data changed by the demo's screen failure reason ``start`` or, if that one does not
    fail this subject (high HBV DNA fails only an HBV-infected subject), the next one that does."""
    for k in range(len(SCREEN_FAILURES)):
        failing = {**data, **SCREEN_FAILURES[(start + k) % len(SCREEN_FAILURES)][1]}
        assessment = _in_memory(ctx, subject, failing)
        if services.evaluate_eligibility(assessment).status == services.Status.NOT_ELIGIBLE:
            return failing
    raise DomainError(f"No demo screen failure reason fails {subject}.")


def _failing(ctx, subject, data: dict) -> dict:
    """The data changed by one of the demo's screen failure reasons that fails this subject
    (high HBV DNA fails only an HBV-infected subject)."""
    for _, change in ctx.rng.sample(SCREEN_FAILURES, len(SCREEN_FAILURES)):
        failing = {**data, **change}
        assessment = _in_memory(ctx, subject, failing)
        if services.evaluate_eligibility(assessment).status == services.Status.NOT_ELIGIBLE:
            return failing
    raise DomainError(f"No demo screen failure reason fails {subject}.")


def _bulk_signature(ctx, assessment, plan) -> EligibilitySignature:
    """The signature ``sign_eligibility`` (or ``confirm_screen_failure``) would have recorded
    when the subject was still in screening (the subject row holds its final status already)."""
    subject = assessment.subject
    evaluation = services.evaluate_eligibility(assessment)
    if plan["stage"] == subjects_demo.SCREEN_FAILED:
        kind = SignatureKind.SCREEN_FAILURE
        not_eligible = evaluation.status == services.Status.NOT_ELIGIBLE
        refusal = None if not_eligible else evaluation.summary()
        failed = "; ".join(f"{r.code}: {r.reason}" for r in evaluation.failed)
        meaning = f"{services.SCREEN_FAILURE_MEANING} Failed: {failed}"
    else:
        kind, meaning = SignatureKind.ELIGIBLE, services.ELIGIBLE_MEANING
        refusal = None if evaluation.is_eligible else evaluation.summary()
        plan["factors"] = services.stratification_factors(subject, assessment=assessment)
    if refusal:
        raise DomainError(f"Demo data of {subject} cannot be signed off: {refusal}")
    investigator = ctx.site_user(Role.INVESTIGATOR, subject.site)
    return EligibilitySignature(
        assessment=assessment,
        kind=kind,
        signer=investigator,
        signer_name=investigator.get_full_name() or investigator.get_username(),
        signed_at=ctx.at(plan["decided_on"], ctx.rng.randint(9, 12), ctx.rng.randint(0, 59)),
        meaning=meaning,
        reference_date=evaluation.reference_date,
        result_summary=evaluation.summary(),
        data_hash=data_hash(assessment),
    )
