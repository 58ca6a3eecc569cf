"""The eligibility CRF as a web form, in sections, with each lab as value + unit and the prior
therapy rows under their question; and the investigator's signature forms."""

from __future__ import annotations

from dataclasses import dataclass

from django import forms

from core.forms import DateInput, ModelErrorsOnFormMixin, reason_field

from . import units
from .criteria import BY_CODE, LAB_FIELDS
from .models import EligibilityAssessment, PriorTherapy
from .signed_data import CRF_FIELDS, ENTERED_FIELDS

# The CRF's sections, in the order of the paper form. Every CRF field is in exactly one; a
# section that asks one criterion's questions takes them from the criterion.
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
        "Enter each value with the unit on the laboratory report; the SI value the criteria use "
        "is computed (eligibility/units.py). Either creatinine or creatinine clearance within "
        "its limit suffices.",
        ["lab_date", *LAB_FIELDS],
    ),
    (
        "Hepatitis B and C (IN10)",
        "",
        [*BY_CODE["IN10"].fields],
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
        [*BY_CODE["EX03"].fields],
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
# Where the prior therapy rows go: under their yes/no question.
PRIOR_THERAPY_QUESTION = "prior_systemic_therapy"


def lab_fields(name: str) -> tuple[str, str, str]:
    """A lab of ``SECTIONS`` on the CRF: value as reported, unit, and the computed SI value."""
    return units.reported_field(name), units.unit_field(name), name


def section_fields(names: list[str]) -> list[str]:
    """The CRF fields of a section (a lab stands for its three fields)."""
    return [f for name in names for f in (lab_fields(name) if name in units.LABS else (name,))]


_listed = [field for _, _, names in SECTIONS for field in section_fields(names)]
assert sorted(_listed) == sorted(CRF_FIELDS), set(CRF_FIELDS) ^ set(_listed)

FEMALE_ONLY = ("childbearing_potential", "pregnancy_test_date", "pregnancy_test_result")
MALE_ONLY = ("partner_childbearing_potential",)


class YesNoSelect(forms.NullBooleanSelect):
    """Yes / No, with an explicit 'not answered' (never read as 'no')."""

    def __init__(self, attrs=None):
        super().__init__(attrs)
        self.choices = [("unknown", "— not answered —"), ("true", "Yes"), ("false", "No")]


@dataclass(frozen=True)
class CrfRow:
    """One line of the CRF page: a field, or a lab's value with its unit and its saved SI value;
    ``prior_therapies`` (the formset) follows the prior therapy question."""

    field: forms.BoundField
    unit: forms.BoundField | None = None
    si_field: str = ""
    si_text: str = ""
    prior_therapies: object = None


class AssessmentForm(ModelErrorsOnFormMixin, forms.ModelForm):
    """The CRF. Entry-time validation comes from the model (units, dates, consistency); the
    eligibility rules run in ``services`` after saving and are shown per criterion. The SI lab
    values are not fields: the service computes them from the value as reported and its unit."""

    class Meta:
        model = EligibilityAssessment
        fields = list(ENTERED_FIELDS)
        widgets = {
            "unsuitable_reason": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args, subject, prior_therapies=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.subject = subject
        self.prior_therapies = prior_therapies
        for name, field in self.fields.items():
            model_field = EligibilityAssessment._meta.get_field(name)
            if isinstance(field, forms.NullBooleanField):
                field.widget = YesNoSelect()
            elif model_field.get_internal_type() == "DateField":
                field.widget = DateInput()
        for name in LAB_FIELDS:
            self._lab_as_value_and_unit(name)
        for name in MALE_ONLY if subject.sex == "F" else FEMALE_ONLY:
            del self.fields[name]
        if self.instance.pk:
            self.fields["reason"] = reason_field()

    def _lab_as_value_and_unit(self, name: str) -> None:
        spec = units.LABS[name]
        value_field, unit_field, _ = lab_fields(name)
        value = self.fields[value_field]
        base = str(value.label).removesuffix(", as reported")
        value.label = base
        value.help_text = ""
        value.widget.attrs.update({"inputmode": "decimal", "step": "any"})
        unit = self.fields[unit_field]
        unit.label = f"Unit of {base[:1].lower()}{base[1:]}" if base != "INR" else "Unit of INR"
        unit.choices = spec.choices  # no blank: a value always has a unit
        unit.required = False
        if not self.initial.get(unit_field):
            self.initial[unit_field] = spec.si_unit.code
        saved = units.as_decimal(self.initial.get(value_field))
        if saved is not None:  # as typed: 160, not 160.00
            self.initial[value_field] = units.plain(saved)

    @property
    def crf_field_names(self) -> list[str]:
        return [name for name in self.fields if name != "reason"]

    def _si_text(self, name: str) -> str:
        """The saved SI value beside a lab entered in another unit ("= 42.8 µmol/L")."""
        spec, instance = units.LABS[name], self.instance
        si, code = getattr(instance, name), getattr(instance, units.unit_field(name))
        if si is None or not code or code == spec.si_unit.code:
            return ""
        return f"saved as {si} {spec.si_unit.symbol} (SI)".rstrip()

    def _rows(self, names: list[str]):
        for name in names:
            if name in units.LABS:
                value_field, unit_field, _ = lab_fields(name)
                yield CrfRow(self[value_field], self[unit_field], name, self._si_text(name))
            elif name in self.fields:
                follows = self.prior_therapies if name == PRIOR_THERAPY_QUESTION else None
                yield CrfRow(self[name], prior_therapies=follows)

    def sections(self):
        """(title, note, rows) per section, for the template's fieldsets."""
        for title, note, names in SECTIONS:
            rows = list(self._rows(names))
            if rows:
                yield title, note, rows


class PriorTherapyForm(ModelErrorsOnFormMixin, forms.ModelForm):
    """One prior systemic therapy row of the CRF page (validated by the model's rules)."""

    class Meta:
        model = PriorTherapy
        fields = list(PriorTherapy.SIGNED_FIELDS)
        widgets = {"start_date": DateInput(), "end_date": DateInput()}


class BasePriorTherapyFormSet(forms.BaseModelFormSet):
    def add_fields(self, form, index):
        super().add_fields(form, index)
        if "DELETE" in form.fields:
            form.fields["DELETE"].label = "Remove this row"

    def rows(self) -> list[dict]:
        """The rows to save (``services.save_prior_therapies``): every row kept, with ``id`` for
        a saved one; a blank new row and a row marked for removal are left out."""
        rows = []
        for form in self.forms:
            if self._should_delete_form(form):
                continue
            if form.instance.pk is None and not form.has_changed():
                continue
            row = {name: form.cleaned_data.get(name) for name in PriorTherapy.SIGNED_FIELDS}
            if form.instance.pk is not None:
                row["id"] = form.instance.pk
            rows.append(row)
        return rows


PriorTherapyFormSet = forms.modelformset_factory(
    PriorTherapy,
    form=PriorTherapyForm,
    formset=BasePriorTherapyFormSet,
    extra=1,
    can_delete=True,
)
PRIOR_THERAPY_PREFIX = "prior_therapies"


def prior_therapy_formset(assessment, data=None) -> BasePriorTherapyFormSet:
    """The formset of the assessment's rows. Bound only when ``data`` carries it (a form posted
    without the rows leaves them as they are)."""
    saved = assessment.prior_therapies.all() if assessment is not None and assessment.pk else None
    queryset = saved if saved is not None else PriorTherapy.objects.none()
    posted = data is not None and f"{PRIOR_THERAPY_PREFIX}-TOTAL_FORMS" in data
    return PriorTherapyFormSet(
        data if posted else None, queryset=queryset, prefix=PRIOR_THERAPY_PREFIX
    )


class SignatureForm(forms.Form):
    password = forms.CharField(
        label="Your password",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-entering your password is your electronic signature.",
    )


class ScreenFailureForm(SignatureForm):
    on_date = forms.DateField(label="Date of the screen failure", widget=DateInput())
