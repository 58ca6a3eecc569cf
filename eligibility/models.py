"""The eligibility CRF and the investigator's electronic signatures on it.

The assessment holds the structured facts each criterion needs (see ``criteria``), not 34 yes/no
boxes. Every fact may be left unanswered (``None``/blank) while the CRF is being filled in: the
evaluation then says which criteria miss which data. Age, sex and consent come from the subject.

A yes/no fact is a nullable boolean: ``None`` means "not answered yet", never "no".
Windowed exclusions pair a yes/no ("ever had…?") with the date of the most recent occurrence.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.audit import AuditedManager
from core.validators import bounded_text, not_before_study_start, not_in_future

from . import settings as elig_settings


def plausible(name: str) -> list:
    """Validators refusing a lab value outside the range possible in the CRF's unit."""
    low, high, unit = elig_settings.PLAUSIBLE_RANGES[name]
    message = (
        f"Enter a value between {low} and {high}{(' ' + unit) if unit else ''}: "
        "check the unit and the decimal point."
    )
    return [MinValueValidator(low, message), MaxValueValidator(high, message)]


def yes_no(label: str, help_text: str = "") -> models.BooleanField:
    return models.BooleanField(label, null=True, blank=True, help_text=help_text)


def past_date(label: str, help_text: str = "") -> models.DateField:
    return models.DateField(
        label, null=True, blank=True, validators=[not_in_future], help_text=help_text
    )


def lab(label: str, name: str, digits: int = 7, places: int = 2) -> models.DecimalField:
    unit = elig_settings.PLAUSIBLE_RANGES[name][2]
    return models.DecimalField(
        f"{label}{f' ({unit})' if unit else ''}",
        max_digits=digits,
        decimal_places=places,
        null=True,
        blank=True,
        validators=plausible(name),
    )


class DiagnosisBasis(models.TextChoices):
    HISTOLOGICAL = "histological", "Histological"
    CYTOLOGICAL = "cytological", "Cytological"
    CLINICAL = "clinical", "Clinical (AASLD criteria, in cirrhosis)"


class BCLCStage(models.TextChoices):
    A = "A", "A (early)"
    B = "B", "B (intermediate)"
    C = "C", "C (advanced)"
    D = "D", "D (terminal)"


class Ascites(models.TextChoices):
    NONE = "none", "Absent"
    SLIGHT = "slight", "Slight"
    MODERATE = "moderate", "Moderate to severe"


class Encephalopathy(models.TextChoices):
    NONE = "none", "None"
    GRADE_1_2 = "grade_1_2", "Grade 1-2"
    GRADE_3_4 = "grade_3_4", "Grade 3-4"


class Serology(models.TextChoices):
    POSITIVE = "positive", "Positive"
    NEGATIVE = "negative", "Negative"


class ExcludedHistology(models.TextChoices):
    NONE = "none", "None known (HCC only)"
    ICC = "icc", "Cholangiocellular carcinoma (ICC)"
    MIXED = "mixed", "Mixed cell carcinoma"
    SARCOMATOID = "sarcomatoid", "Sarcomatoid HCC"
    FIBROLAMELLAR = "fibrolamellar", "Fibrolamellar carcinoma"


class EligibilityAssessment(models.Model):
    site_lookup = "subject__site"
    subject_lookup = "subject"

    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.PROTECT, related_name="eligibility"
    )
    planned_randomization_date = models.DateField(
        null=True,
        blank=True,
        validators=[not_before_study_start],
        help_text="Windows (pregnancy test, recent therapies…) are evaluated against this date at "
        "screening, and against the actual date at randomization.",
    )

    # --- Diagnosis and disease (IN02-IN05, EX01) ---
    diagnosis_basis = models.CharField(
        "Basis of the HCC diagnosis", max_length=20, blank=True, choices=DiagnosisBasis.choices
    )
    cirrhosis = yes_no("Cirrhosis", "Required for a clinical (AASLD) diagnosis.")
    excluded_histology = models.CharField(
        "Known excluded histology",
        max_length=20,
        blank=True,
        choices=ExcludedHistology.choices,
        help_text="ICC, mixed cell, sarcomatoid or fibrolamellar carcinoma exclude (EX01).",
    )
    bclc_stage = models.CharField("BCLC stage", max_length=1, blank=True, choices=BCLCStage.choices)
    unsuitable_for_radical_therapy = yes_no("Unsuitable for radical surgical and/or local therapy")
    progressed_after_local_therapy = yes_no("Progressed after surgical and/or local therapy")
    prior_systemic_therapy = yes_no(
        "Prior systemic therapy for HCC",
        "Chemotherapy, anti-angiogenic or other targeted drugs, "
        "immunotherapy (CTLA-4, PD-1/PD-L1).",
    )
    measurable_lesions = models.PositiveSmallIntegerField(
        "Number of RECIST 1.1 measurable lesions",
        null=True,
        blank=True,
        validators=[MaxValueValidator(50, "Enter a number of lesions between 0 and 50.")],
    )
    target_lesion_locally_treated = yes_no(
        "Target lesion previously treated locally (or in a locally treated area)"
    )
    target_lesion_progressed = yes_no(
        "Radiological progression (PD) of that target lesion since the local therapy"
    )

    # --- Liver function: Child-Pugh (IN06) ---
    ascites = models.CharField(max_length=10, blank=True, choices=Ascites.choices)
    encephalopathy = models.CharField(
        "Hepatic encephalopathy (current)",
        max_length=10,
        blank=True,
        choices=Encephalopathy.choices,
    )
    hepatic_encephalopathy_history = yes_no("History of hepatic encephalopathy")

    # --- Performance and prognosis (IN07, IN08) ---
    ecog = models.PositiveSmallIntegerField(
        "ECOG performance status",
        null=True,
        blank=True,
        choices=[(n, str(n)) for n in range(5)],
        validators=[MaxValueValidator(4, "ECOG performance status is 0 to 4.")],
    )
    life_expectancy_weeks = models.PositiveSmallIntegerField(
        "Predicted life expectancy (weeks)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(520, "Enter a life expectancy of at most 520 weeks.")],
    )

    # --- Screening laboratory (IN06, IN09) ---
    lab_date = past_date("Date of the screening blood samples")
    anc = lab("Absolute neutrophil count", "anc")
    platelets = lab("Platelets", "platelets", places=1)
    hemoglobin = lab("Hemoglobin", "hemoglobin", places=1)
    total_bilirubin = lab("Total bilirubin", "total_bilirubin", places=1)
    alt = lab("ALT", "alt", places=1)
    ast = lab("AST", "ast", places=1)
    creatinine = lab("Serum creatinine", "creatinine", places=1)
    creatinine_clearance = lab("Creatinine clearance", "creatinine_clearance", places=1)
    inr = lab("INR", "inr")
    albumin = lab("Albumin", "albumin", places=1)

    # --- Hepatitis B and C (IN10) ---
    hbsag = models.CharField("HBsAg", max_length=10, blank=True, choices=Serology.choices)
    hbcab = models.CharField("HBcAb", max_length=10, blank=True, choices=Serology.choices)
    hbv_dna_iu_ml = models.PositiveBigIntegerField(
        "HBV DNA (IU/mL)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(10**10, "Enter HBV DNA in IU/mL (at most 10¹⁰).")],
        help_text="Enter 0 when not detected.",
    )
    anti_hbv_therapy = yes_no(
        "Effective anti-HBV therapy continued, or entecavir/tenofovir started, for the whole study"
    )
    anti_hcv = models.CharField(
        "Anti-HCV antibody", max_length=10, blank=True, choices=Serology.choices
    )
    hcv_rna_copies_ml = models.PositiveBigIntegerField(
        "HCV RNA (copies/mL)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(10**10, "Enter HCV RNA in copies/mL (at most 10¹⁰).")],
        help_text="Enter 0 when not detected.",
    )

    # --- Pregnancy and contraception (IN11) ---
    childbearing_potential = yes_no("Woman of childbearing potential", "Female subjects only.")
    pregnancy_test_date = past_date("Date of the serum pregnancy test")
    pregnancy_test_result = models.CharField(
        "Serum pregnancy test result", max_length=10, blank=True, choices=Serology.choices
    )
    partner_childbearing_potential = yes_no(
        "Partner is a woman of childbearing potential", "Male subjects only."
    )
    contraception_agreed = yes_no(
        "Agrees to reliable contraception during the trial and 60 days after the last dose"
    )

    # --- Consent and compliance (IN12) ---
    good_compliance_expected = yes_no("The investigator expects good compliance")

    # --- Exclusion facts ---
    other_malignancy_5y = yes_no("Other malignancy within 5 years before screening (EX02)")
    other_malignancy_cured_in_situ = yes_no(
        "…and it is a cured localized one (cervical carcinoma in situ, skin basal cell carcinoma, "
        "prostate carcinoma in situ)"
    )
    local_therapy_received = yes_no(
        "Ever received hepatic surgery, local therapy or investigational treatment for HCC (EX03)"
    )
    last_local_therapy_date = past_date("Date of the most recent one")
    bone_radiotherapy_received = yes_no(
        "Ever received palliative radiotherapy for bone metastases (EX03)"
    )
    last_bone_radiotherapy_date = past_date("Date of the most recent bone radiotherapy")
    chinese_medicine_received = yes_no(
        "Ever took a Chinese medicine preparation with anti-liver-cancer effect (EX03)"
    )
    last_chinese_medicine_date = past_date("Date of the most recent dose")
    treatment_toxicity_unrecovered = yes_no(
        "Not recovered to CTCAE grade ≤ 1 from side effects of such treatment, "
        "alopecia apart (EX03)"
    )
    prior_anti_pd1_therapy = yes_no("Prior anti-PD-1 or other PD-1/PD-L1 immunotherapy (EX04)")
    uncontrolled_effusion = yes_no(
        "Uncontrolled pericardial or pleural effusion, or clinically obvious moderate/severe "
        "pleural effusion (EX05)"
    )
    gi_hemorrhage_history = yes_no("Ever had a gastrointestinal hemorrhage (EX06)")
    last_gi_hemorrhage_date = past_date("Date of the most recent GI hemorrhage")
    high_bleeding_risk = yes_no(
        "Portal hypertension with high bleeding risk in the investigator's view (EX06)",
        "If yes, a gastroscopy must exclude the red sign.",
    )
    red_sign_history = yes_no("History of red sign at gastroscopy (EX06)")
    fistula_grade3 = yes_no("Grade ≥ 3 GI or non-GI fistula at present (EX07)")
    excluded_tumor_thrombus = yes_no(
        "Tumor thrombus in the portal vein main trunk involving the contralateral branch or the "
        "superior mesenteric vein, or in the inferior vena cava (EX08)"
    )
    serious_cardiovascular_disease = yes_no(
        "Serious cardiovascular or cerebrovascular disease (EX09)"
    )
    bleeding_disorder = yes_no(
        "Major bleeding or coagulation disorder, or other evident bleeding tendency (EX10)"
    )
    major_surgery_received = yes_no(
        "Ever had medium or major surgery, diagnostic biopsy apart (EX11)"
    )
    last_major_surgery_date = past_date("Date of the most recent medium or major surgery")
    cns_metastases = yes_no("Central nervous system metastases (EX12)")
    non_healing_wound = yes_no(
        "Serious non-healing or dehiscing wound, active ulcer or untreated bone fracture (EX13)"
    )
    live_vaccine_received = yes_no("Ever received a live vaccine (EX14)")
    last_live_vaccine_date = past_date("Date of the most recent live vaccine")
    active_autoimmune_disease = yes_no(
        "Active autoimmune disease needing systemic treatment in the past 2 years (EX15)",
        "Replacement therapy and inhaled or topical corticosteroids do not count.",
    )
    ild_pneumonitis_or_tb = yes_no(
        "History of interstitial lung disease or non-infectious pneumonitis (not radiation-"
        "induced), or of active tuberculosis (EX16)"
    )
    serious_infection = yes_no(
        "Serious infection needing systemic antibacterial, antifungal or antiviral therapy at "
        "screening, viral hepatitis apart (EX17)"
    )
    hiv = yes_no("Known HIV infection (EX18)")
    transplant = yes_no("Prior allogeneic stem cell or solid organ transplantation (EX19)")
    gi_absorption_problem = yes_no(
        "Cannot swallow tablets, malabsorption or another condition affecting GI absorption (EX20)"
    )
    antibody_allergy = yes_no(
        "Serious allergy to a monoclonal antibody or a targeted anti-angiogenic drug (EX21)"
    )
    investigator_judges_unsuitable = yes_no(
        "Otherwise unsuitable in the investigator's view (EX22)"
    )
    unsuitable_reason = models.TextField(
        "Why unsuitable", blank=True, max_length=2000, validators=[bounded_text()]
    )

    # --- Stratification (with ECOG above) ---
    macrovascular_invasion = yes_no("Macrovascular invasion")
    extrahepatic_spread = yes_no("Extrahepatic spread")
    prior_locoregional_therapy = yes_no(
        "History of locoregional therapy for HCC (TACE, ablation, radiotherapy…)"
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True, db_index=True)

    objects = AuditedManager()
    history = HistoricalRecords(excluded_fields=["updated"])

    class Meta:
        ordering = ["subject__site__code", "subject__sequence"]

    def __str__(self):
        return f"Eligibility of {self.subject}"

    def get_absolute_url(self):
        from django.urls import reverse

        return reverse("eligibility:detail", args=[self.subject.subject_identifier])

    # Each windowed exclusion: (received flag, date of the most recent one).
    DATED_FACTS = (
        ("local_therapy_received", "last_local_therapy_date"),
        ("bone_radiotherapy_received", "last_bone_radiotherapy_date"),
        ("chinese_medicine_received", "last_chinese_medicine_date"),
        ("gi_hemorrhage_history", "last_gi_hemorrhage_date"),
        ("major_surgery_received", "last_major_surgery_date"),
        ("live_vaccine_received", "last_live_vaccine_date"),
    )

    def clean(self):
        """Consistency of answers with each other and with the subject (entry-time checks): each
        rule of ``ASSESSMENT_RULES`` says which field is wrong and why."""
        errors: dict[str, str] = {}
        for rule in ASSESSMENT_RULES:
            errors.update(rule(self))
        if errors:
            raise ValidationError(errors)


# --- the entry-time rules of the assessment: each returns {field: message} ---------------------


def _no_date_when_answer_is_no(a: EligibilityAssessment) -> dict[str, str]:
    return {
        date_field: "Leave the date empty when the answer is no."
        for flag, date_field in a.DATED_FACTS
        if getattr(a, flag) is False and getattr(a, date_field) is not None
    }


def _follow_up_only_when_asked(a: EligibilityAssessment) -> dict[str, str]:
    errors = {}
    if a.target_lesion_locally_treated is False and a.target_lesion_progressed is not None:
        errors["target_lesion_progressed"] = (
            "Answer only when the target lesion was treated locally."
        )
    if a.other_malignancy_5y is False and a.other_malignancy_cured_in_situ is not None:
        errors["other_malignancy_cured_in_situ"] = (
            "Answer only when there was another malignancy within 5 years."
        )
    return errors


def _reasons_and_dates_given(a: EligibilityAssessment) -> dict[str, str]:
    errors = {}
    if a.investigator_judges_unsuitable and not a.unsuitable_reason.strip():
        errors["unsuitable_reason"] = "Say why the subject is unsuitable."
    if a.pregnancy_test_result and not a.pregnancy_test_date:
        errors["pregnancy_test_date"] = "Give the date of the pregnancy test."
    return errors


FEMALE_ONLY_FIELDS = ("childbearing_potential", "pregnancy_test_date", "pregnancy_test_result")


def _fits_the_subjects_sex(a: EligibilityAssessment) -> dict[str, str]:
    if not a.subject_id:
        return {}
    if a.subject.sex == "M":
        return {
            name: "This applies to female subjects only."
            for name in FEMALE_ONLY_FIELDS
            if getattr(a, name) not in (None, "")
        }
    if a.partner_childbearing_potential is not None:
        return {"partner_childbearing_potential": "This applies to male subjects only."}
    return {}


def _planned_after_consent(a: EligibilityAssessment) -> dict[str, str]:
    planned = a.planned_randomization_date
    consent = a.subject.consent_date if a.subject_id else None
    if planned and consent and planned < consent:
        return {
            "planned_randomization_date": (
                "The planned randomization date is before the informed consent."
            )
        }
    ahead = elig_settings.PLANNED_RANDOMIZATION_MAX_DAYS_AHEAD
    if planned and planned > timezone.localdate() + timedelta(days=ahead):
        return {
            "planned_randomization_date": (
                f"The planned randomization date is more than {ahead} days ahead: the screening "
                "windows would run out. Enter it when the date is known."
            )
        }
    return {}


ASSESSMENT_RULES = (
    _no_date_when_answer_is_no,
    _follow_up_only_when_asked,
    _reasons_and_dates_given,
    _fits_the_subjects_sex,
    _planned_after_consent,
)


class SignatureKind(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    SCREEN_FAILURE = "screen_failure", "Screen failure confirmed"


class EligibilitySignature(models.Model):
    """An investigator's electronic signature on the assessment (21 CFR Part 11 style).

    It records who signed, when (UTC), what the signature means, and a SHA-256 hash of the
    canonical JSON of the signed data. A change to the assessment voids it (``void`` with a
    reason, in its history); signatures are never deleted.
    """

    site_lookup = "assessment__subject__site"
    subject_lookup = "assessment__subject"

    assessment = models.ForeignKey(
        EligibilityAssessment, on_delete=models.PROTECT, related_name="signatures"
    )
    kind = models.CharField(max_length=20, choices=SignatureKind.choices)
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=300, help_text="The signer's full name when signing.")
    signed_at = models.DateTimeField(help_text="UTC.")
    meaning = models.TextField()
    reference_date = models.DateField(help_text="The date the windows were evaluated against.")
    result_summary = models.TextField(help_text="The evaluation when signed.")
    data_hash = models.CharField("SHA-256 of the signed data", max_length=64)
    void = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)

    objects = AuditedManager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["-signed_at"]

    def __str__(self):
        state = " (void)" if self.void else ""
        when = f"{self.signed_at:%Y-%m-%d %H:%M} UTC"
        return f"{self.get_kind_display()} — {self.signer_name}, {when}{state}"
