"""The eligibility CRF and the investigator's electronic signatures on it.

The assessment holds the structured facts each criterion needs, not yes/no boxes per criterion,
and every fact may stay unanswered while the CRF is filled in: a yes/no is a nullable boolean,
``None`` meaning "not answered yet", never "no". Each lab is kept as reported and in SI; the SI
value is computed by ``services`` from ``units``, never entered or edited by hand.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.crf import CrfRecord
from core.validators import bounded_text, not_before_study_start, not_in_future

from . import settings as elig_settings
from . import units
from .rules import ASSESSMENT_RULES

# The version of the definition of what a signature covers (``signed_data``): 1 = the CRF fields
# before the labs as reported and the prior therapy rows; 2 = with them. A signature records the
# version its hash was computed with, and is checked against the data in that version.
SIGNED_DATA_VERSION = 2


def plausible(name: str) -> list:
    """Validators refusing an SI lab value outside the range possible (a last guard: the value as
    reported is checked in its own unit first, ``rules._labs_plausible_in_their_unit``)."""
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


def lab(label: str, name: str, digits: int = 7) -> models.DecimalField:
    """The SI value of a screening lab (what the criteria read): computed, not entered."""
    spec = units.LABS[name]
    symbol = spec.si_unit.symbol
    return models.DecimalField(
        f"{label}{f' ({symbol})' if symbol else ''}",
        max_digits=digits,
        decimal_places=spec.si_places,
        null=True,
        blank=True,
        editable=False,
        validators=plausible(name),
        help_text="SI units: computed from the value as reported and its unit "
        "(eligibility/units.py).",
    )


def as_reported(label: str, name: str) -> tuple[models.DecimalField, models.CharField]:
    """The value of a screening lab as the laboratory reported it, and its unit."""
    value = models.DecimalField(
        f"{label}, as reported",
        max_digits=units.REPORTED_DIGITS,
        decimal_places=units.REPORTED_PLACES,
        null=True,
        blank=True,
        help_text="The value on the laboratory report, in the unit it gives.",
    )
    unit = models.CharField(
        f"{label}, unit reported",
        max_length=10,
        blank=True,
        choices=units.LABS[name].choices,
    )
    return value, unit


def screening_lab(label: str, name: str) -> tuple[models.Field, models.Field, models.Field]:
    """A screening lab's three fields: the value as reported, its unit, and the SI value."""
    return (*as_reported(label, name), lab(label, name))


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


# The stratification factors the randomization reads from the CRF (with ECOG).
STRATIFICATION_FIELDS = (
    "macrovascular_invasion",
    "extrahepatic_spread",
    "ecog",
    "prior_locoregional_therapy",
)


class EligibilityAssessment(CrfRecord):
    url_name = "eligibility:detail"

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
        "Chemotherapy, anti-angiogenic or other targeted drugs, immunotherapy (CTLA-4, "
        "PD-1/PD-L1), in any setting (adjuvant and neoadjuvant too): list each one.",
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
    anc_reported, anc_unit, anc = screening_lab("Absolute neutrophil count", "anc")
    platelets_reported, platelets_unit, platelets = screening_lab("Platelets", "platelets")
    hemoglobin_reported, hemoglobin_unit, hemoglobin = screening_lab("Hemoglobin", "hemoglobin")
    total_bilirubin_reported, total_bilirubin_unit, total_bilirubin = screening_lab(
        "Total bilirubin", "total_bilirubin"
    )
    alt_reported, alt_unit, alt = screening_lab("ALT", "alt")
    ast_reported, ast_unit, ast = screening_lab("AST", "ast")
    creatinine_reported, creatinine_unit, creatinine = screening_lab(
        "Serum creatinine", "creatinine"
    )
    creatinine_clearance_reported, creatinine_clearance_unit, creatinine_clearance = screening_lab(
        "Creatinine clearance", "creatinine_clearance"
    )
    inr_reported, inr_unit, inr = screening_lab("INR", "inr")
    albumin_reported, albumin_unit, albumin = screening_lab("Albumin", "albumin")

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

    def __str__(self):
        return f"Eligibility of {self.subject}"

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

    # --- the prior therapy rows ---

    def prior_therapy_list(self) -> list[PriorTherapy]:
        """The prior systemic therapies, in a fixed order: the rows given in memory
        (``use_prior_therapies``) or else the saved ones (prefetch ``prior_therapies`` to read
        them for many assessments in one query)."""
        rows = self.__dict__.get("_prior_therapy_rows")
        if rows is None:
            rows = list(self.prior_therapies.all()) if self.pk else []
        return sorted(rows, key=PriorTherapy.sort_key)

    def use_prior_therapies(self, rows) -> None:
        """Evaluate and hash this assessment with ``rows`` rather than the saved rows: for an
        assessment built in memory (demo data, a check before saving), or read by a query that
        knows it has none. ``forget_prior_therapies`` goes back to the saved rows."""
        self._prior_therapy_rows = list(rows)

    def forget_prior_therapies(self) -> None:
        self.__dict__.pop("_prior_therapy_rows", None)


# --- prior systemic therapy ------------------------------------------------------------------


class PriorTherapyAgent(models.TextChoices):
    SORAFENIB = "sorafenib", "Sorafenib"
    LENVATINIB = "lenvatinib", "Lenvatinib"
    DONAFENIB = "donafenib", "Donafenib"
    ATEZOLIZUMAB_BEVACIZUMAB = "atezolizumab_bevacizumab", "Atezolizumab + bevacizumab"
    SINTILIMAB_BEVACIZUMAB = "sintilimab_bevacizumab", "Sintilimab + bevacizumab (biosimilar)"
    CAMRELIZUMAB_RIVOCERANIB = "camrelizumab_rivoceranib", "Camrelizumab + rivoceranib (apatinib)"
    DURVALUMAB_TREMELIMUMAB = "durvalumab_tremelimumab", "Durvalumab + tremelimumab"
    REGORAFENIB = "regorafenib", "Regorafenib"
    CABOZANTINIB = "cabozantinib", "Cabozantinib"
    FOLFOX4 = "folfox4", "FOLFOX4 (oxaliplatin-based chemotherapy)"
    OTHER = "other", "Other (name it)"


class TherapySetting(models.TextChoices):
    ADJUVANT = "adjuvant", "Adjuvant"
    NEOADJUVANT = "neoadjuvant", "Neoadjuvant"
    ADVANCED = "advanced", "Advanced disease"


class PriorTherapy(CrfRecord):
    """One prior systemic therapy for HCC, under the CRF's yes/no question: any row, whatever its
    setting (adjuvant sorafenib too), is prior systemic therapy for IN04. Written only through
    ``services.save_prior_therapies`` (or ``save_assessment(..., prior_therapies=...)``), which
    voids the signature when the rows change: the signature covers them."""

    site_lookup = "assessment__subject__site"
    subject_lookup = "assessment__subject"
    url_parent = "assessment"

    assessment = models.ForeignKey(
        EligibilityAssessment, on_delete=models.PROTECT, related_name="prior_therapies"
    )
    agent = models.CharField(
        max_length=30,
        choices=PriorTherapyAgent.choices,
        error_messages={"blank": "Choose the agent."},
    )
    agent_other = models.CharField(
        "Other agent",
        max_length=200,
        blank=True,
        validators=[bounded_text(200)],
        help_text="When the agent is 'Other': its name (or the regimen).",
    )
    setting = models.CharField(
        max_length=12,
        choices=TherapySetting.choices,
        error_messages={"blank": "Choose the setting."},
        help_text="Adjuvant: after resection or ablation; neoadjuvant: before them; advanced: "
        "for unresectable or metastatic disease.",
    )
    start_date = models.DateField(
        validators=[not_in_future],
        error_messages={"null": "Give the start date.", "blank": "Give the start date."},
    )
    end_date = models.DateField(
        null=True, blank=True, validators=[not_in_future], help_text="Empty while ongoing."
    )

    class Meta:
        ordering = ["start_date", "pk"]
        verbose_name = "prior systemic therapy"
        verbose_name_plural = "prior systemic therapies"

    def __str__(self):
        return self.describe()

    @property
    def agent_name(self) -> str:
        if self.agent == PriorTherapyAgent.OTHER:
            return self.agent_other.strip() or "Other agent"
        return dict(PriorTherapyAgent.choices).get(self.agent, self.agent) or "Agent not given"

    def describe(self) -> str:
        """The row in words: Sorafenib (adjuvant), 2023-02-01 to 2023-11-30."""
        setting = dict(TherapySetting.choices).get(self.setting, self.setting) or "setting?"
        setting = setting.lower()
        start = f"{self.start_date:%Y-%m-%d}" if self.start_date else "start?"
        end = f"{self.end_date:%Y-%m-%d}" if self.end_date else "ongoing"
        return f"{self.agent_name} ({setting}), {start} to {end}"

    @staticmethod
    def audit_label(record) -> str:
        """The row in the subject's audit trail: "Prior therapy: Sorafenib"."""
        if record.agent == PriorTherapyAgent.OTHER:
            return f"Prior therapy: {record.agent_other}"
        return f"Prior therapy: {dict(PriorTherapyAgent.choices).get(record.agent, record.agent)}"

    @staticmethod
    def sort_key(row: PriorTherapy) -> tuple:
        """A fixed order from the content (the signed data list the rows in it)."""
        return (
            row.start_date or date.min,
            row.agent,
            row.agent_other,
            row.setting,
            row.end_date or date.max,
        )

    SIGNED_FIELDS = ("agent", "agent_other", "setting", "start_date", "end_date")

    def clean(self):
        errors = {}
        if self.agent == PriorTherapyAgent.OTHER and not self.agent_other.strip():
            errors["agent_other"] = "Name the agent (or the regimen)."
        elif self.agent and self.agent != PriorTherapyAgent.OTHER and self.agent_other.strip():
            errors["agent_other"] = "Name an agent here only when the agent is 'Other'."
        if self.start_date and self.end_date and self.end_date < self.start_date:
            errors["end_date"] = "The end date is before the start date."
        if errors:
            raise ValidationError(errors)


class SignatureKind(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    SCREEN_FAILURE = "screen_failure", "Screen failure confirmed"


class EligibilitySignature(CrfRecord):
    """An investigator's electronic signature on the assessment (21 CFR Part 11 style).

    It records who signed, when (UTC), what the signature means, and a SHA-256 hash of the
    canonical JSON of the signed data. A change to the assessment voids it (``void`` with a
    reason, in its history); signatures are never deleted.
    """

    site_lookup = "assessment__subject__site"
    subject_lookup = "assessment__subject"
    url_parent = "assessment"

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
    data_version = models.PositiveSmallIntegerField(
        "Version of the signed data",
        default=SIGNED_DATA_VERSION,
        help_text="The definition of the signed data (eligibility/signed_data.py) the hash was "
        "computed with.",
    )
    void = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)
    created = None
    updated = None

    class Meta:
        ordering = ["-signed_at"]

    def __str__(self):
        state = " (void)" if self.void else ""
        when = f"{self.signed_at:%Y-%m-%d %H:%M} UTC"
        return f"{self.get_kind_display()} — {self.signer_name}, {when}{state}"
