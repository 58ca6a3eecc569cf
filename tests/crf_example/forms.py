from django import forms

from core.forms import DateInput, OneTimeSubmissionMixin, reason_field

from .models import Position
from .services import FIELDS


class VitalSignsForm(forms.Form):
    measured_on = forms.DateField(label="Date measured", widget=DateInput())
    systolic_bp = forms.IntegerField(label="Systolic blood pressure (mmHg)")
    position = forms.ChoiceField(label="Position", choices=Position.choices)

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        if editing:
            self.fields["reason"] = reason_field()

    @staticmethod
    def initial_from(record) -> dict:
        return {name: getattr(record, name) for name in FIELDS}

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in FIELDS}


class NewVitalSignsForm(OneTimeSubmissionMixin, VitalSignsForm):
    pass
