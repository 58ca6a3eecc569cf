"""The evaluation of each criterion (IN01-IN12, EX01-EX22): every threshold comes from
``eligibility.settings``, never from here."""

from __future__ import annotations

from decimal import Decimal

from . import units
from .criterion import (
    CHILD_PUGH_FIELDS,
    Context,
    CriterionOutcome,
    child_pugh,
    combine,
    dated_exclusion,
    label,
    missing,
    within,
)
from .models import (
    DiagnosisBasis,
    ExcludedHistology,
    Serology,
)

# --- inclusion checks ---------------------------------------------------------------------------


def in01_age(ctx: Context):
    s = ctx.subject
    if s.consent_date is None:
        return missing(["informed consent date (age is taken at consent)"])
    age = s.age_on(s.consent_date)
    if age is None:
        return missing(["date of birth or age of the subject"])
    low, high = ctx.protocol["age_min"], ctx.protocol["age_max"]
    if low <= age <= high:
        return CriterionOutcome.PASS, f"Aged {age} at consent, within {low}-{high}."
    return CriterionOutcome.FAIL, f"Aged {age} at consent, outside {low}-{high} (inclusive)."


def in02_diagnosis(ctx: Context):
    basis = ctx.value("diagnosis_basis")
    if not basis:
        return missing([label("diagnosis_basis")])
    if basis != DiagnosisBasis.CLINICAL:
        return CriterionOutcome.PASS, f"{DiagnosisBasis(basis).label} diagnosis of HCC."
    cirrhosis = ctx.value("cirrhosis")
    if cirrhosis is None:
        return missing([label("cirrhosis") + " (a clinical diagnosis needs cirrhosis)"])
    if cirrhosis:
        return CriterionOutcome.PASS, "Clinical diagnosis of HCC per AASLD in a cirrhotic patient."
    return (
        CriterionOutcome.FAIL,
        "A clinical diagnosis is accepted only in cirrhosis; without cirrhosis the diagnosis must "
        "be histological or cytological.",
    )


def in03_bclc(ctx: Context):
    stage = ctx.value("bclc_stage")
    if not stage:
        return missing([label("bclc_stage")])
    accepted = ctx.protocol["bclc_stages"]
    if stage not in accepted:
        return (
            CriterionOutcome.FAIL,
            f"BCLC stage {stage}; the protocol requires {' or '.join(accepted)}.",
        )
    unsuitable = ctx.value("unsuitable_for_radical_therapy")
    progressed = ctx.value("progressed_after_local_therapy")
    if unsuitable or progressed:
        why = "unsuitable for radical therapy" if unsuitable else "progressed after such therapy"
        return CriterionOutcome.PASS, f"BCLC stage {stage}, {why}."
    if unsuitable is None or progressed is None:
        return missing(
            ctx.unanswered("unsuitable_for_radical_therapy", "progressed_after_local_therapy")
        )
    return (
        CriterionOutcome.FAIL,
        f"BCLC stage {stage}, but neither unsuitable for radical surgical/local therapy nor "
        "progressed after it.",
    )


def in04_no_systemic(ctx: Context):
    """Any prior therapy row fails, whatever its setting (adjuvant sorafenib is prior systemic
    therapy); a "yes" without rows lacks the rows; a "no" with rows is refused at entry."""
    rows = ctx.assessment.prior_therapy_list()
    if rows:
        listed = "; ".join(row.describe() for row in rows)
        return CriterionOutcome.FAIL, f"Prior systemic therapy for HCC: {listed}."
    prior = ctx.value("prior_systemic_therapy")
    if prior is None:
        return missing([label("prior_systemic_therapy")])
    if prior:
        return missing(
            [f"{label('prior_therapies')} (agent, setting, dates): the answer is yes, list each"]
        )
    return CriterionOutcome.PASS, "No prior systemic therapy for HCC."


def in05_measurable(ctx: Context):
    count = ctx.value("measurable_lesions")
    if count is None:
        return missing([label("measurable_lesions")])
    needed = ctx.protocol["measurable_lesions_min"]
    if count < needed:
        return (
            CriterionOutcome.FAIL,
            f"{count} measurable lesion(s) per RECIST 1.1; at least {needed} needed.",
        )
    treated = ctx.value("target_lesion_locally_treated")
    if treated is None:
        return missing([label("target_lesion_locally_treated")])
    if not treated:
        return (
            CriterionOutcome.PASS,
            f"{count} measurable lesion(s); target lesion not treated locally.",
        )
    progressed = ctx.value("target_lesion_progressed")
    if progressed is None:
        return missing([label("target_lesion_progressed")])
    if progressed:
        return (
            CriterionOutcome.PASS,
            f"{count} measurable lesion(s); target lesion treated locally, since PD.",
        )
    return (
        CriterionOutcome.FAIL,
        "The target lesion was treated locally and has not progressed radiologically since: "
        "choose another target lesion.",
    )


def in06_child_pugh(ctx: Context):
    names = ctx.unanswered(*CHILD_PUGH_FIELDS, "hepatic_encephalopathy_history")
    cp = child_pugh(ctx.assessment)
    history = ctx.value("hepatic_encephalopathy_history")
    required = ctx.protocol["child_pugh_class"]
    if cp is not None and cp.grade != required:
        return CriterionOutcome.FAIL, f"{cp} (score {cp.score}); class {required} required."
    if history:
        return CriterionOutcome.FAIL, "History of hepatic encephalopathy."
    if names:
        return missing(names)
    return CriterionOutcome.PASS, f"{cp} (score {cp.score}), no history of hepatic encephalopathy."


def in07_ecog(ctx: Context):
    ecog = ctx.value("ecog")
    if ecog is None:
        return missing([label("ecog")])
    accepted = ctx.protocol["ecog_accepted"]
    if ecog in accepted:
        return CriterionOutcome.PASS, f"ECOG {ecog}."
    return CriterionOutcome.FAIL, f"ECOG {ecog}; {' or '.join(map(str, accepted))} required."


def in08_life_expectancy(ctx: Context):
    weeks = ctx.value("life_expectancy_weeks")
    if weeks is None:
        return missing([label("life_expectancy_weeks")])
    needed = ctx.protocol["life_expectancy_min_weeks"]
    if weeks >= needed:
        return CriterionOutcome.PASS, f"Predicted life expectancy {weeks} weeks (≥ {needed})."
    return (
        CriterionOutcome.FAIL,
        f"Predicted life expectancy {weeks} weeks; at least {needed} needed.",
    )


# The screening labs, in SI units (the conversion table: ``units``).
LAB_FIELDS: tuple[str, ...] = units.LAB_NAMES
RENAL = ("creatinine", "creatinine_clearance")


def lab_text(ctx: Context, field: str) -> str:
    """A lab value for a reason: its SI value and, when reported in another unit, as reported
    ("Total bilirubin (µmol/L) 59.9 (reported 3.5 mg/dL)")."""
    text = f"{label(field)} {ctx.value(field)}"
    spec = units.LABS[field]
    reported = units.as_decimal(ctx.value(units.reported_field(field)))
    code = ctx.value(units.unit_field(field))
    if reported is not None and code and code != spec.si_unit.code and spec.accepts(code):
        text += f" (reported {units.plain(reported)} {spec.unit(code).symbol})"
    return text


def _lab_ok(value: Decimal, limit: dict) -> bool:
    if "min" in limit and value < limit["min"]:
        return False
    return not ("max" in limit and value > limit["max"])


def in09_labs(ctx: Context):
    limits = ctx.lab_limits
    failures, absent = [], []
    lab_date = ctx.value("lab_date")
    if lab_date is None:
        absent.append(label("lab_date"))
    elif ctx.reference_date is None:
        absent.append("planned randomization date (lab recency is counted back from it)")
    elif not within(lab_date, ctx.reference_date, days=ctx.lab_max_age_days):
        failures.append(
            f"labs of {lab_date:%Y-%m-%d} are more than {ctx.lab_max_age_days} days before the "
            f"reference date {ctx.reference_date:%Y-%m-%d}: repeat them"
        )
    for field in LAB_FIELDS:
        if field in RENAL:
            continue
        value = ctx.value(field)
        if value is None:
            absent.append(label(field))
        elif not _lab_ok(Decimal(value), limits[field]):
            failures.append(f"{lab_text(ctx, field)} fails {limits[field]['basis']}")
    # Renal function: either creatinine or creatinine clearance within its limit suffices.
    renal = {f: ctx.value(f) for f in RENAL}
    renal_ok = [f for f, v in renal.items() if v is not None and _lab_ok(Decimal(v), limits[f])]
    if not renal_ok:
        if all(v is not None for v in renal.values()):
            failures.append(
                f"renal function fails both {limits['creatinine']['basis']} and "
                f"{limits['creatinine_clearance']['basis']}"
            )
        else:
            absent.append(f"{label('creatinine')} or {label('creatinine_clearance')}")
    if failures:
        return CriterionOutcome.FAIL, "Inadequate organ function: " + "; ".join(failures) + "."
    if absent:
        return missing(absent)
    return CriterionOutcome.PASS, "All screening labs within the protocol limits."


def _hbv(ctx: Context) -> list[tuple[CriterionOutcome, str]]:
    """IN10, hepatitis B: with HBsAg or HBcAb positive, HBV DNA below the limit and effective
    anti-HBV therapy throughout."""
    hbsag, hbcab = ctx.value("hbsag"), ctx.value("hbcab")
    dna, antiviral = ctx.value("hbv_dna_iu_ml"), ctx.value("anti_hbv_therapy")
    if Serology.POSITIVE not in (hbsag, hbcab):
        if hbsag and hbcab:
            return [(CriterionOutcome.PASS, "HBsAg and HBcAb negative.")]
        return [missing(ctx.unanswered("hbsag", "hbcab"))]
    parts = []
    limit = ctx.protocol["hbv_dna_below_iu_ml"]
    if dna is None:
        parts.append(missing([label("hbv_dna_iu_ml") + " (HBsAg or HBcAb positive)"]))
    elif dna >= limit:
        parts.append((CriterionOutcome.FAIL, f"HBV DNA {dna} IU/mL; must be below {limit} IU/mL."))
    else:
        parts.append((CriterionOutcome.PASS, f"HBV DNA {dna} IU/mL (< {limit})."))
    if antiviral is None:
        parts.append(missing([label("anti_hbv_therapy")]))
    elif not antiviral:
        parts.append(
            (
                CriterionOutcome.FAIL,
                "HBV marker positive without effective anti-HBV therapy throughout.",
            )
        )
    else:
        parts.append((CriterionOutcome.PASS, "On effective anti-HBV therapy throughout."))
    return parts


def _hcv(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN10, hepatitis C: anti-HCV negative, or positive with HCV RNA at most the limit."""
    anti_hcv, rna = ctx.value("anti_hcv"), ctx.value("hcv_rna_copies_ml")
    if not anti_hcv:
        return missing([label("anti_hcv")])
    if anti_hcv != Serology.POSITIVE:
        return CriterionOutcome.PASS, "Anti-HCV negative."
    limit = ctx.protocol["hcv_rna_max_copies_ml"]
    if rna is None:
        return missing([label("hcv_rna_copies_ml") + " (anti-HCV positive)"])
    if rna > limit:
        return (
            CriterionOutcome.FAIL,
            f"Anti-HCV positive with HCV RNA {rna} copies/mL (> {limit}).",
        )
    return CriterionOutcome.PASS, f"Anti-HCV positive, HCV RNA {rna} copies/mL (≤ {limit})."


def in10_hepatitis(ctx: Context):
    parts = [*_hbv(ctx), _hcv(ctx)]
    # Co-infection: HBsAg positive and HCV RNA positive. HCV RNA is asked for only when anti-HCV
    # is positive; with anti-HCV negative the subject is taken as HCV RNA negative.
    rna = ctx.value("hcv_rna_copies_ml")
    if (
        ctx.value("hbsag") == Serology.POSITIVE
        and rna is not None
        and rna > ctx.protocol["hcv_rna_positive_above_copies_ml"]
    ):
        parts.append((CriterionOutcome.FAIL, "HBV/HCV co-infection (HBsAg and HCV RNA positive)."))
    return combine(parts)


def _male_contraception(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN11 for a man: contraception agreed when the partner is of childbearing potential."""
    partner = ctx.value("partner_childbearing_potential")
    agreed = ctx.value("contraception_agreed")
    if partner is None:
        return missing([label("partner_childbearing_potential")])
    if not partner:
        return CriterionOutcome.PASS, "Male subject; partner not of childbearing potential."
    if agreed is None:
        return missing([label("contraception_agreed")])
    if agreed:
        return (
            CriterionOutcome.PASS,
            "Male subject with a partner of childbearing potential agrees to contraception.",
        )
    return (
        CriterionOutcome.FAIL,
        "Partner of childbearing potential and no agreement to contraception.",
    )


def _pregnancy_test(ctx: Context) -> tuple[CriterionOutcome, str]:
    """IN11 for a woman of childbearing potential: a negative serum pregnancy test within the
    window before the reference date."""
    result, tested = ctx.value("pregnancy_test_result"), ctx.value("pregnancy_test_date")
    window = ctx.protocol["pregnancy_test_window_days"]
    if result == Serology.POSITIVE:
        return CriterionOutcome.FAIL, "Positive serum pregnancy test."
    if not result or tested is None:
        return missing(ctx.unanswered("pregnancy_test_date", "pregnancy_test_result"))
    if ctx.reference_date is None:
        return missing(["planned randomization date (the test window is counted from it)"])
    days = (ctx.reference_date - tested).days
    if 0 <= days <= window:
        return (
            CriterionOutcome.PASS,
            f"Negative serum pregnancy test {days} day(s) before the reference date.",
        )
    if days < 0:
        return (
            CriterionOutcome.FAIL,
            "The pregnancy test is dated after the reference date: it must be "
            f"done within {window} days before randomization.",
        )
    return (
        CriterionOutcome.FAIL,
        f"The serum pregnancy test ({tested:%Y-%m-%d}) is {days} days before "
        f"the reference date {ctx.reference_date:%Y-%m-%d}; it must be within "
        f"{window} days: repeat it.",
    )


def _contraception_agreed(ctx: Context) -> tuple[CriterionOutcome, str]:
    agreed = ctx.value("contraception_agreed")
    if agreed is None:
        return missing([label("contraception_agreed")])
    if not agreed:
        return CriterionOutcome.FAIL, "No agreement to reliable contraception."
    return CriterionOutcome.PASS, "Agrees to reliable contraception."


def in11_pregnancy(ctx: Context):
    if ctx.subject.sex == "M":
        return _male_contraception(ctx)
    wocbp = ctx.value("childbearing_potential")
    if wocbp is None:
        return missing([label("childbearing_potential")])
    if not wocbp:
        return CriterionOutcome.PASS, "Female subject not of childbearing potential."
    return combine([_pregnancy_test(ctx), _contraception_agreed(ctx)])


def in12_consent(ctx: Context):
    s = ctx.subject
    if s.consent_date is None:
        return missing(["informed consent"])
    compliance = ctx.value("good_compliance_expected")
    if compliance is None:
        return missing([label("good_compliance_expected")])
    if ctx.reference_date is not None and s.consent_date > ctx.reference_date:
        return CriterionOutcome.FAIL, "Informed consent is dated after the reference date."
    if not compliance:
        return CriterionOutcome.FAIL, "The investigator does not expect good compliance."
    return (
        CriterionOutcome.PASS,
        f"Written informed consent signed {s.consent_date:%Y-%m-%d} (version {s.consent_version}).",
    )


# --- exclusion checks ---------------------------------------------------------------------------


def ex01_histology(ctx: Context):
    histology = ctx.value("excluded_histology")
    if not histology:
        return missing([label("excluded_histology")])
    if histology == ExcludedHistology.NONE:
        return CriterionOutcome.PASS, "No excluded histology known."
    return CriterionOutcome.FAIL, f"Known {ExcludedHistology(histology).label.lower()}."


def ex02_other_malignancy(ctx: Context):
    other = ctx.value("other_malignancy_5y")
    if other is None:
        return missing([label("other_malignancy_5y")])
    if not other:
        return CriterionOutcome.PASS, "No other malignancy within 5 years."
    cured = ctx.value("other_malignancy_cured_in_situ")
    if cured is None:
        return missing([label("other_malignancy_cured_in_situ")])
    if cured:
        return (
            CriterionOutcome.PASS,
            "Other malignancy within 5 years, a cured localized one (allowed).",
        )
    return (
        CriterionOutcome.FAIL,
        "Other malignancy within 5 years that is not an allowed cured localized one.",
    )


def ex03_recent_therapy(ctx: Context):
    p = ctx.protocol
    parts = [
        dated_exclusion(
            ctx,
            "local_therapy_received",
            "last_local_therapy_date",
            "hepatic surgery, local or investigational therapy",
            days=p["local_therapy_window_days"],
        ),
        dated_exclusion(
            ctx,
            "bone_radiotherapy_received",
            "last_bone_radiotherapy_date",
            "palliative bone radiotherapy",
            days=p["bone_radiotherapy_window_days"],
        ),
        dated_exclusion(
            ctx,
            "chinese_medicine_received",
            "last_chinese_medicine_date",
            "anti-liver-cancer Chinese medicine",
            days=p["chinese_medicine_window_days"],
        ),
    ]
    unrecovered = ctx.value("treatment_toxicity_unrecovered")
    if unrecovered is None:
        parts.append(missing([label("treatment_toxicity_unrecovered")]))
    elif unrecovered:
        parts.append(
            (
                CriterionOutcome.FAIL,
                "Not recovered to grade ≤ 1 from side effects of prior treatment.",
            )
        )
    else:
        parts.append((CriterionOutcome.PASS, "Recovered from side effects of prior treatment."))
    return combine(parts)


def ex06_gi_hemorrhage(ctx: Context):
    parts = [
        dated_exclusion(
            ctx,
            "gi_hemorrhage_history",
            "last_gi_hemorrhage_date",
            "GI hemorrhage",
            months=ctx.protocol["gi_hemorrhage_window_months"],
        )
    ]
    risk, red = ctx.value("high_bleeding_risk"), ctx.value("red_sign_history")
    if red:
        parts.append((CriterionOutcome.FAIL, "History of red sign at gastroscopy."))
    elif risk is None:
        parts.append(missing([label("high_bleeding_risk")]))
    elif risk and red is None:
        parts.append(
            missing([label("red_sign_history") + " (gastroscopy needed: high bleeding risk)"])
        )
    else:
        parts.append(
            (
                CriterionOutcome.PASS,
                "No red sign at gastroscopy." if red is False else "No high bleeding risk.",
            )
        )
    return combine(parts)


def ex11_major_surgery(ctx: Context):
    return dated_exclusion(
        ctx,
        "major_surgery_received",
        "last_major_surgery_date",
        "medium or major surgery",
        days=ctx.protocol["major_surgery_window_days"],
    )


def ex14_live_vaccine(ctx: Context):
    return dated_exclusion(
        ctx,
        "live_vaccine_received",
        "last_live_vaccine_date",
        "live vaccine",
        days=ctx.protocol["live_vaccine_window_days"],
    )


def ex22_investigator(ctx: Context):
    value = ctx.value("investigator_judges_unsuitable")
    if value is None:
        return missing([label("investigator_judges_unsuitable")])
    if value:
        return (
            CriterionOutcome.FAIL,
            f"Unsuitable in the investigator's view: {ctx.value('unsuitable_reason')}",
        )
    return CriterionOutcome.PASS, "Not otherwise unsuitable in the investigator's view."
