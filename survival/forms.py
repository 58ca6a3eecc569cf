"""Site-staff forms of the end of treatment, the survival follow-up and the end of study. The
rules live in the models and ``services``; forms only collect the fields."""

from __future__ import annotations

from django import forms

from adverse_events.models import AdverseEvent
from core.forms import DateInput, OneTimeSubmissionMixin, reason_field

from .models import EndOfStudy, EndOfTreatment, SurvivalFollowUp
from .services import EOS_FIELDS, EOT_FIELDS, FOLLOW_UP_FIELDS

BLANK_THERAPY_ROWS = 2


class _AeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return f"AE {obj.ae_number}: {obj.term} (grade {obj.grade})"


def _ae_field(subject, label: str) -> _AeChoiceField:
    return _AeChoiceField(
        queryset=AdverseEvent.objects.filter(subject=subject)
        .select_related("term")
        .order_by("ae_number"),
        required=False,
        label=label,
        empty_label="— none —",
    )


class _CrfForm(forms.Form):
    model = None
    names: tuple[str, ...] = ()
    dates: tuple[str, ...] = ()

    def __init__(self, *args, subject, editing=False, **kwargs):
        super().__init__(*args, **kwargs)
        plain = [n for n in self.names if not n.endswith("adverse_event")]
        self.fields.update(
            forms.fields_for_model(
                self.model, fields=plain, widgets={n: DateInput() for n in self.dates}
            )
        )
        for name in self.names:
            if name.endswith("adverse_event"):
                field = self.model._meta.get_field(name)
                self.fields[name] = _ae_field(subject, str(field.verbose_name).capitalize())
                self.fields[name].help_text = field.help_text
        self.order_fields(self.names)
        if editing:
            self.fields["reason"] = reason_field()

    @classmethod
    def initial_from(cls, record) -> dict:
        return {name: getattr(record, name) for name in cls.names}

    def service_data(self) -> dict:
        data = {name: self.cleaned_data.get(name) for name in self.names}
        for name in self.names:
            if isinstance(self.fields[name], forms.CharField) and data[name] is None:
                data[name] = ""
        return data


class EndOfTreatmentForm(_CrfForm):
    model = EndOfTreatment
    names = EOT_FIELDS
    dates = ("last_dose_date",)


class NewEndOfTreatmentForm(OneTimeSubmissionMixin, EndOfTreatmentForm):
    pass


class EndOfStudyForm(_CrfForm):
    model = EndOfStudy
    names = EOS_FIELDS
    dates = ("end_date", "death_date")


class NewEndOfStudyForm(OneTimeSubmissionMixin, EndOfStudyForm):
    pass


class FollowUpForm(_CrfForm):
    """A contact, with rows for the anticancer therapies started since (the saved ones and
    two blank rows)."""

    model = SurvivalFollowUp
    names = FOLLOW_UP_FIELDS
    dates = ("contact_date", "last_known_alive_date")

    def __init__(self, *args, subject, editing=False, therapies=(), **kwargs):
        super().__init__(*args, subject=subject, editing=editing, **kwargs)
        self.therapy_rows = len(therapies) + BLANK_THERAPY_ROWS
        for n in range(1, self.therapy_rows + 1):
            self.fields[f"agent_{n}"] = forms.CharField(
                label=f"Subsequent therapy {n}: agent or procedure", required=False, max_length=200
            )
            self.fields[f"start_{n}"] = forms.DateField(
                label=f"Subsequent therapy {n}: start date", required=False, widget=DateInput()
            )
        for n, therapy in enumerate(therapies, start=1):
            self.initial.setdefault(f"agent_{n}", therapy.agent)
            self.initial.setdefault(f"start_{n}", therapy.start_date)
        if editing:
            self.order_fields([*self.names, *self._therapy_names(), "reason"])

    def _therapy_names(self):
        for n in range(1, self.therapy_rows + 1):
            yield f"agent_{n}"
            yield f"start_{n}"

    def therapies(self) -> list[dict]:
        return [
            {
                "agent": self.cleaned_data.get(f"agent_{n}"),
                "start_date": self.cleaned_data.get(f"start_{n}"),
            }
            for n in range(1, self.therapy_rows + 1)
        ]


class NewFollowUpForm(OneTimeSubmissionMixin, FollowUpForm):
    pass
