"""The eligibility CRF as a web form, in sections, and the investigator's signature forms."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from core.forms import DateInput, reason_field

from .criteria import LAB_FIELDS
from .models import EligibilityAssessment
from .services import CRF_FIELDS

# The CRF's sections, in the order of the paper form. Every CRF field is in exactly one.
SECTIONS: list[tuple[str, str, list[str]]] = [
    (
        "Visit",
        "Windows are counted back from the planned randomization date at screening, and from the "
        "actual date at randomization.",
        ["planned_randomization_date"],
    ),
    (
        "Diagnosis and disease (IN02-IN05, EX01)",
        "",
        [
            "diagnosis_basis",
            "cirrhosis",
            "excluded_histology",
            "bclc_stage",
            "unsuitable_for_radical_therapy",
            "progressed_after_local_therapy",
            "prior_systemic_therapy",
            "measurable_lesions",
            "target_lesion_locally_treated",
            "target_lesion_progressed",
        ],
    ),
    (
        "Liver function (IN06)",
        "Child-Pugh is computed from these and the bilirubin, albumin and INR of the labs below.",
        ["ascites", "encephalopathy", "hepatic_encephalopathy_history"],
    ),
    (
        "Performance status and prognosis (IN07, IN08)",
        "ECOG is also a stratification factor.",
        ["ecog", "life_expectancy_weeks"],
    ),
    (
        "Screening laboratory (IN09)",
        "SI units. Either creatinine or creatinine clearance within its limit suffices.",
        ["lab_date", *LAB_FIELDS],
    ),
    (
        "Hepatitis B and C (IN10)",
        "",
        ["hbsag", "hbcab", "hbv_dna_iu_ml", "anti_hbv_therapy", "anti_hcv", "hcv_rna_copies_ml"],
    ),
    (
        "Pregnancy and contraception (IN11)",
        "",
        [
            "childbearing_potential",
            "pregnancy_test_date",
            "pregnancy_test_result",
            "partner_childbearing_potential",
            "contraception_agreed",
        ],
    ),
    ("Consent and compliance (IN12)", "", ["good_compliance_expected"]),
    (
        "Recent treatment (EX03)",
        "",
        [
            "local_therapy_received",
            "last_local_therapy_date",
            "bone_radiotherapy_received",
            "last_bone_radiotherapy_date",
            "chinese_medicine_received",
            "last_chinese_medicine_date",
            "treatment_toxicity_unrecovered",
        ],
    ),
    (
        "Other exclusion criteria (EX02, EX04-EX22)",
        "",
        [
            "other_malignancy_5y",
            "other_malignancy_cured_in_situ",
            "prior_anti_pd1_therapy",
            "uncontrolled_effusion",
            "gi_hemorrhage_history",
            "last_gi_hemorrhage_date",
            "high_bleeding_risk",
            "red_sign_history",
            "fistula_grade3",
            "excluded_tumor_thrombus",
            "serious_cardiovascular_disease",
            "bleeding_disorder",
            "major_surgery_received",
            "last_major_surgery_date",
            "cns_metastases",
            "non_healing_wound",
            "live_vaccine_received",
            "last_live_vaccine_date",
            "active_autoimmune_disease",
            "ild_pneumonitis_or_tb",
            "serious_infection",
            "hiv",
            "transplant",
            "gi_absorption_problem",
            "antibody_allergy",
            "investigator_judges_unsuitable",
            "unsuitable_reason",
        ],
    ),
    (
        "Stratification",
        "With ECOG above, these set the randomization stratum.",
        ["macrovascular_invasion", "extrahepatic_spread", "prior_locoregional_therapy"],
    ),
]
_listed = [name for _, _, names in SECTIONS for name in names]
assert sorted(_listed) == sorted(CRF_FIELDS), set(CRF_FIELDS) ^ set(_listed)

FEMALE_ONLY = ("childbearing_potential", "pregnancy_test_date", "pregnancy_test_result")
MALE_ONLY = ("partner_childbearing_potential",)


class YesNoSelect(forms.NullBooleanSelect):
    """Yes / No, with an explicit 'not answered' (never read as 'no')."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "— not answered —"), ("true", "Yes"), ("false", "No")]


class AssessmentForm(forms.ModelForm):
    """The CRF. Entry-time validation comes from the model (units, dates, consistency); the
    eligibility rules run in ``services`` after saving and are shown per criterion."""

    class Meta:
        model = EligibilityAssessment
        fields = list(CRF_FIELDS)
        widgets = {
            "unsuitable_reason": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, subject, **kwargs):
        super().__init__(*args, **kwargs)
        self.subject = subject
        for name, field in self.fields.items():
            model_field = EligibilityAssessment._meta.get_field(name)
            if isinstance(field, forms.NullBooleanField):
                field.widget = YesNoSelect()
            elif model_field.get_internal_type() == "DateField":
                field.widget = DateInput()
        for name in MALE_ONLY if subject.sex == "F" else FEMALE_ONLY:
            del self.fields[name]
        if self.instance.pk:
            self.fields["reason"] = reason_field()

    @property
    def crf_field_names(self) -> list[str]:
        return [name for name in self.fields if name != "reason"]

    def sections(self):
        """(title, note, bound fields) per section, for the template's fieldsets."""
        for title, note, names in SECTIONS:
            bound = [self[name] for name in names if name in self.fields]
            if bound:
                yield title, note, bound


class SignatureForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-entering your password is your electronic signature.",
    )


class ScreenFailureForm(SignatureForm):
    on_date = forms.DateField(
        label="Date of the screen failure", widget=DateInput(), initial=timezone.localdate
    )
