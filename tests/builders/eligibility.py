"""Eligibility test data for every app's tests: a complete, eligible, signed assessment.

``make_eligible_assessment(subject, ecog=1, macrovascular_invasion=True)`` and so on: any CRF field
can be overridden. Dates are relative to today at the subject's site (``site_today``), so the
assessment stays eligible whenever the tests run; the planned randomization date is today.

Labs come as a laboratory reports them, value and unit (``ELIGIBLE_LABS``: some in SI units, some
in conventional ones), with the SI value the service computes. Override a lab by its value as
reported and/or its unit (``total_bilirubin_reported=Decimal("2.5"),
total_bilirubin_unit="mg/dL"``), or by its SI value alone (``total_bilirubin=Decimal("33.9")``: a
value reported in the SI unit).
``make_prior_therapy_rows`` gives prior systemic therapy rows for ``services.save_prior_therapies``.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from core.roles import Role
from eligibility import services, units
from eligibility.demo import NO_EXCLUSION_FINDINGS
from eligibility.models import (
    Ascites,
    BCLCStage,
    DiagnosisBasis,
    EligibilityAssessment,
    Encephalopathy,
    ExcludedHistology,
    PriorTherapyAgent,
    Serology,
    TherapySetting,
)

from .subjects import PASSWORD, make_user, site_today

# The screening labs of an eligible subject, as reported: (value, UCUM unit) -> SI value.
ELIGIBLE_LABS: dict[str, tuple[str, str]] = {
    "anc": ("3.2", "10*9/L"),  # 3.20 × 10⁹/L
    "platelets": ("160", "10*3/uL"),  # 160.0 × 10⁹/L
    "hemoglobin": ("12.8", "g/dL"),  # 128.0 g/L
    "total_bilirubin": ("0.89", "mg/dL"),  # 15.2 µmol/L
    "alt": ("45", "U/L"),
    "ast": ("52", "U/L"),
    "creatinine": ("78", "umol/L"),
    "creatinine_clearance": ("92", "mL/min"),
    "inr": ("1.10", "1"),
    "albumin": ("39.5", "g/L"),
}


def with_lab_values(data: dict) -> dict:
    """``data`` with each lab complete (value as reported, unit, SI value), as the service
    completes it (``services.lab_values``): for an assessment built in memory."""
    return services.lab_values(EligibilityAssessment(), data)


def eligible_data(subject, **overrides) -> dict:
    """Every CRF field answered so that the subject is eligible (and stratifiable)."""
    today = site_today(subject.site)
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
    for name, (value, code) in ELIGIBLE_LABS.items():
        if name not in overrides:  # an SI value given alone replaces the value as reported
            data.setdefault(units.reported_field(name), Decimal(value))
            data.setdefault(units.unit_field(name), code)
    if subject.sex == "F":
        data["childbearing_potential"] = False
    else:
        data["partner_childbearing_potential"] = False
    data.update(overrides)
    return with_lab_values(data)


def make_prior_therapy_rows(*rows, **fields) -> list[dict]:
    """Prior therapy rows for ``services.save_prior_therapies``: adjuvant sorafenib for a year,
    ending six months ago, unless ``fields`` say otherwise; each of ``rows`` (dicts) changes it."""
    today = site_today()
    base = {
        "agent": PriorTherapyAgent.SORAFENIB,
        "agent_other": "",
        "setting": TherapySetting.ADJUVANT,
        "start_date": today - timedelta(days=550),
        "end_date": today - timedelta(days=180),
        **fields,
    }
    return [{**base, **row} for row in rows] if rows else [base]


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


_YES_NO = {
    f.name
    for f in EligibilityAssessment._meta.concrete_fields
    if f.get_internal_type() == "BooleanField"
}


def _posted(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def crf_post(data: dict, **extra) -> dict:
    """CRF values as the browser sends them: yes/no as true/false/unknown, dates in ISO."""
    return {
        name: "unknown" if value is None and name in _YES_NO else _posted(value)
        for name, value in {**data, **extra}.items()
    }


def prior_therapy_post(rows: list[dict], *, saved: int = 0) -> dict:
    """The prior therapy rows of the CRF page as posted (prefix ``prior_therapies``): ``rows``
    in order, the first ``saved`` of them saved rows (with their ``id``); a row with
    ``DELETE=True`` is marked for removal."""
    prefix = "prior_therapies"
    post = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": str(saved),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for name, value in row.items():
            if name == "DELETE":
                if value:
                    post[f"{prefix}-{i}-DELETE"] = "on"
                continue
            post[f"{prefix}-{i}-{name}"] = _posted(value)
    return post
