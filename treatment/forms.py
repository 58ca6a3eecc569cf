"""Site-staff forms of the exposure CRFs. The rules live in ``services`` and the models; the
forms only collect the fields. The cycle form carries one group of dose fields per IV drug of
the subject's arm, named ``<drug>_<field>`` (the service keys a dose's errors the same way)."""

from __future__ import annotations

from django import forms

from core.forms import DateInput, OneTimeSubmissionMixin, reason_field
from randomization.arms import drug_name

from .models import IV_DRUGS, DoseLevel
from .services import DOSE_FIELDS, PERIOD_FIELDS


class AdverseEventChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"AE {obj.ae_number}: {obj.term.term} (grade {obj.grade}, onset {obj.onset_date})"


def _ae_field(events):
    return AdverseEventChoiceField(
        queryset=events,
        required=False,
        label="Adverse event that caused it",
        empty_label="— none —",
    )


class CycleForm(forms.Form):
    """A cycle: number, day 1, weight, and the IV doses of the arm's drugs."""

    number = forms.IntegerField(label="Cycle number", min_value=1, max_value=500)
    day1_date = forms.DateField(label="Cycle day 1", widget=DateInput())
    weight_kg = forms.DecimalField(
        label="Body weight (kg)",
        max_digits=5,
        decimal_places=1,
        help_text="Weighed at this cycle: the bevacizumab dose is 15 mg/kg of it.",
    )

    def __init__(self, *args, drugs=(), events=None, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.iv_drugs = [d for d in drugs if d in IV_DRUGS]
        for drug in self.iv_drugs:
            name = drug_name(drug)
            self.fields[f"{drug}_given_dose_mg"] = forms.DecimalField(
                label=f"{name}: dose given (mg)",
                max_digits=7,
                decimal_places=1,
                min_value=0,
                help_text="0 when not given this cycle."
                + (
                    " Planned: 15 mg/kg × the weight."
                    if drug == "bevacizumab"
                    else " Planned: 240 mg."
                ),
            )
            self.fields[f"{drug}_administered_date"] = forms.DateField(
                label=f"{name}: administered on", required=False, widget=DateInput()
            )
            for flag, label in (
                ("delayed", "delayed"),
                ("interrupted", "infusion interrupted"),
                ("reduced", "dose reduced"),
            ):
                self.fields[f"{drug}_{flag}"] = forms.BooleanField(
                    label=f"{name}: {label}", required=False
                )
            self.fields[f"{drug}_dose_change_reason"] = forms.CharField(
                label=f"{name}: reason for the change",
                required=False,
                max_length=2000,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Required when delayed, interrupted, reduced, not given, or more "
                "than 10 % off the planned dose.",
            )
            field = _ae_field(events)
            field.label = f"{name}: adverse event that caused it"
            self.fields[f"{drug}_adverse_event"] = field
        if editing:
            self.fields["reason"] = reason_field()

    @staticmethod
    def initial_from(cycle) -> dict:
        initial = {
            "number": cycle.number,
            "day1_date": cycle.day1_date,
            "weight_kg": cycle.weight_kg,
        }
        for dose in cycle.iv_doses.all():
            for name in DOSE_FIELDS:
                initial[f"{dose.drug}_{name}"] = getattr(dose, name)
        return initial

    def service_data(self) -> dict:
        data = self.cleaned_data
        return {
            "number": data["number"],
            "day1_date": data["day1_date"],
            "weight_kg": data["weight_kg"],
            "doses": {
                drug: {name: data.get(f"{drug}_{name}") for name in DOSE_FIELDS}
                for drug in self.iv_drugs
            },
        }


class NewCycleForm(OneTimeSubmissionMixin, CycleForm):
    pass


class OralPeriodForm(forms.Form):
    dose_level = forms.ChoiceField(label="Dose level", choices=DoseLevel.choices)
    start_date = forms.DateField(label="Start date", widget=DateInput())
    stop_date = forms.DateField(
        label="Stop date", required=False, widget=DateInput(), help_text="Blank while ongoing."
    )
    dose_change_reason = forms.CharField(
        label="Reason for the level",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required for any level below 800 mg/day, and a hold.",
    )

    def __init__(self, *args, events=None, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["adverse_event"] = _ae_field(events)
        if editing:
            self.fields["reason"] = reason_field()

    @staticmethod
    def initial_from(period) -> dict:
        return {name: getattr(period, name) for name in PERIOD_FIELDS}

    def service_data(self) -> dict:
        data = self.cleaned_data
        return {
            "dose_level": data["dose_level"],
            "start_date": data["start_date"],
            "stop_date": data.get("stop_date"),
            "dose_change_reason": data.get("dose_change_reason", ""),
            "adverse_event": data.get("adverse_event"),
        }


class NewOralPeriodForm(OneTimeSubmissionMixin, OralPeriodForm):
    pass
