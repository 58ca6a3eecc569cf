"""Eligibility test data for every app's tests: a complete, eligible, signed assessment.

``make_eligible_assessment(subject, ecog=1, macrovascular_invasion=True)`` and so on: any CRF field
can be overridden. Dates are relative to today, so the assessment stays eligible whenever the
tests run; the planned randomization date is today.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from core.roles import Role
from eligibility import services
from eligibility.demo import NO_EXCLUSION_FINDINGS
from eligibility.models import (
    Ascites,
    BCLCStage,
    DiagnosisBasis,
    EligibilityAssessment,
    Encephalopathy,
    ExcludedHistology,
    Serology,
)

from .subjects import PASSWORD, make_user


def eligible_data(subject, **overrides) -> dict:
    """Every CRF field answered so that the subject is eligible (and stratifiable)."""
    today = timezone.localdate()
    data = {
        "planned_randomization_date": today,
        "diagnosis_basis": DiagnosisBasis.HISTOLOGICAL,
        "cirrhosis": True,
        "excluded_histology": ExcludedHistology.NONE,
        "bclc_stage": BCLCStage.C,
        "unsuitable_for_radical_therapy": True,
        "progressed_after_local_therapy": False,
        "prior_systemic_therapy": False,
        "measurable_lesions": 2,
        "target_lesion_locally_treated": False,
        "ascites": Ascites.NONE,
        "encephalopathy": Encephalopathy.NONE,
        "hepatic_encephalopathy_history": False,
        "ecog": 0,
        "life_expectancy_weeks": 26,
        "lab_date": today - timedelta(days=3),
        "anc": Decimal("3.2"),
        "platelets": Decimal("160"),
        "hemoglobin": Decimal("128"),
        "total_bilirubin": Decimal("15.2"),
        "alt": Decimal("45"),
        "ast": Decimal("52"),
        "creatinine": Decimal("78"),
        "creatinine_clearance": Decimal("92"),
        "inr": Decimal("1.10"),
        "albumin": Decimal("39.5"),
        "hbsag": Serology.POSITIVE,
        "hbcab": Serology.POSITIVE,
        "hbv_dna_iu_ml": 120,
        "anti_hbv_therapy": True,
        "anti_hcv": Serology.NEGATIVE,
        "contraception_agreed": True,
        "good_compliance_expected": True,
        "other_malignancy_5y": False,
        "local_therapy_received": True,
        "last_local_therapy_date": today - timedelta(days=90),
        **NO_EXCLUSION_FINDINGS,
        "macrovascular_invasion": False,
        "extrahepatic_spread": False,
        "prior_locoregional_therapy": True,
    }
    if subject.sex == "F":
        data["childbearing_potential"] = False
    else:
        data["partner_childbearing_potential"] = False
    data.update(overrides)
    return data


def make_eligible_assessment(
    subject, *, by=None, sign: bool = True, investigator=None, **overrides
) -> EligibilityAssessment:
    """A complete, eligible assessment, signed by an investigator at the subject's site.

    ``by`` enters the data (default: new site staff at the site). With ``sign=True`` the
    overrides must leave the subject eligible (e.g. ``ecog=2`` cannot be signed: pass
    ``sign=False``).
    """
    by = by or make_user(Role.SITE_STAFF, subject.site)
    assessment = services.save_assessment(
        subject, user=by, data=eligible_data(subject, **overrides), reason="Test data"
    )
    if sign:
        investigator = investigator or make_user(Role.INVESTIGATOR, subject.site)
        services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    assessment.refresh_from_db()
    return assessment
