"""Site-staff forms of the RECIST CRFs. The rules live in ``services`` and the models; the forms
collect the fields: a baseline lesion, and an assessment with one diameter field per target
lesion (``target_<n>``) and one status per non-target lesion (``non_target_<n>``)."""

from __future__ import annotations

from django import forms

from core.forms import DateInput, ModelErrorsOnFormMixin, OneTimeSubmissionMixin, reason_field

from .models import (
    NON_TARGET_STATUS_CHOICES,
    RESPONSE_CHOICES,
    NonTargetLesion,
    TargetLesion,
    TumorAssessment,
)
from .services import LESION_FIELDS, TARGET_FIELDS


def _with_reason(form, editing: bool) -> None:
    if editing:
        form.fields["reason"] = reason_field()


class _LesionForm(ModelErrorsOnFormMixin, forms.ModelForm):
    """A baseline lesion: its ``Meta.fields`` are the fields its service takes."""

    class Meta:
        widgets = {"baseline_date": DateInput()}

    def __init__(self, *args, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        _with_reason(self, editing)

    def _post_clean(self):
        """The service validates the instance (with the subject): not the form."""

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self._meta.fields}


class TargetLesionForm(_LesionForm):
    class Meta(_LesionForm.Meta):
        model = TargetLesion
        fields = TARGET_FIELDS


class NewTargetLesionForm(OneTimeSubmissionMixin, TargetLesionForm):
    pass


class NonTargetLesionForm(_LesionForm):
    class Meta(_LesionForm.Meta):
        model = NonTargetLesion
        fields = LESION_FIELDS


class NewNonTargetLesionForm(OneTimeSubmissionMixin, NonTargetLesionForm):
    pass


def _mm(value) -> str:
    return "—" if value is None else f"{value.normalize():f} mm"


class AssessmentForm(forms.Form):
    """A follow-up assessment; ``rows`` are ``selectors.lesion_rows`` (each target with its
    baseline and nadir, shown beside its input); ``non_targets`` the baseline non-targets."""

    assessment_date = forms.DateField(label="Assessment date", widget=DateInput())
    method = TumorAssessment._meta.get_field("method").formfield()

    def __init__(self, *args, rows=(), non_targets=(), editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.rows, self.non_targets = list(rows), list(non_targets)
        for row in self.rows:
            lesion = row.lesion
            kind = "short axis" if lesion.lymph_node else "longest diameter"
            self.fields[f"target_{lesion.number}"] = forms.DecimalField(
                label=f"{lesion.code} {lesion.get_organ_display()}, {lesion.location} ({kind}, mm)",
                required=False,
                min_value=0,
                max_digits=4,
                decimal_places=1,
                help_text=f"Baseline {_mm(row.baseline)}; nadir {_mm(row.nadir)}. 0 if it "
                "disappeared; empty if not evaluated.",
            )
        for lesion in self.non_targets:
            self.fields[f"non_target_{lesion.number}"] = forms.ChoiceField(
                label=f"{lesion.code} {lesion.get_organ_display()}, {lesion.location}",
                choices=NON_TARGET_STATUS_CHOICES,
            )
        self.fields["new_lesions"] = forms.BooleanField(
            label="Unequivocal new lesions", required=False
        )
        self.fields["new_lesions_description"] = forms.CharField(
            label="New lesions: where and what",
            required=False,
            max_length=2000,
            widget=forms.Textarea(attrs={"rows": 2}),
        )
        self.fields["investigator_response"] = forms.ChoiceField(
            label="Overall response (investigator)",
            choices=[("", "—")] + RESPONSE_CHOICES,
            help_text="The system derives the RECIST 1.1 response too and shows both after saving.",
        )
        _with_reason(self, editing)

    def target_fields(self):
        return [(row, self[f"target_{row.lesion.number}"]) for row in self.rows]

    def non_target_fields(self):
        return [self[f"non_target_{lesion.number}"] for lesion in self.non_targets]

    @classmethod
    def initial_from(cls, assessment: TumorAssessment) -> dict:
        initial = {
            name: getattr(assessment, name)
            for name in (
                "assessment_date",
                "method",
                "new_lesions",
                "new_lesions_description",
                "investigator_response",
            )
        }
        for m in assessment.measurements.all():
            initial[f"target_{m.lesion.number}"] = m.diameter
        for s in assessment.non_target_statuses.all():
            initial[f"non_target_{s.lesion.number}"] = s.status
        return initial

    def service_data(self) -> dict:
        data = self.cleaned_data
        return {
            "assessment_date": data["assessment_date"],
            "method": data["method"],
            "new_lesions": data["new_lesions"],
            "new_lesions_description": data["new_lesions_description"],
            "investigator_response": data["investigator_response"],
            "measurements": {
                row.lesion.number: data.get(f"target_{row.lesion.number}") for row in self.rows
            },
            "non_targets": {
                lesion.number: data.get(f"non_target_{lesion.number}")
                for lesion in self.non_targets
            },
        }


class NewAssessmentForm(OneTimeSubmissionMixin, AssessmentForm):
    pass
