"""Site-staff forms of the AE CRF. The rules live in ``services`` and the model; forms only
collect the fields (the grade list is narrowed to the term's grades by a small script, and the
service refuses a grade the term does not have)."""

from __future__ import annotations

from itertools import groupby

from django import forms

from core.forms import DateInput, OneTimeSubmissionMixin, SiteDateTimeField, reason_field
from core.site_time import EARLIER, LATER
from randomization.arms import drug_name

from .models import (
    GRADES,
    SERIOUS_CRITERIA_FIELDS,
    ActionTaken,
    AdverseEvent,
    Causality,
    CtcaeTerm,
)
from .services import AE_FIELDS


class TermChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        return obj.term


def grouped_term_choices(queryset):
    """The terms grouped by SOC (an <optgroup> per SOC)."""
    choices = [("", "— choose the CTCAE term —")]
    for soc, terms in groupby(queryset.order_by("soc", "term"), key=lambda t: t.soc):
        choices.append((soc, [(t.pk, t.term) for t in terms]))
    return choices


class AdverseEventForm(forms.Form):
    """The AE CRF; ``drugs`` are the study drugs of the subject's arm (causality per drug);
    ``site`` the subject's site, in whose local time the awareness time is entered."""

    def __init__(self, *args, drugs=(), editing=False, site=None, **kwargs):
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(
            AdverseEvent,
            fields=[f for f in AE_FIELDS if f not in ("term", "site_aware_at")],
            widgets={
                "onset_date": DateInput(),
                "end_date": DateInput(),
                "death_date": DateInput(),
                "treatment_details": forms.Textarea(attrs={"rows": 2}),
            },
        )
        # The 24-hour clock starts at this time: of a repeated hour (clocks going back), the
        # earlier reading, which makes the report due sooner.
        model_fields["site_aware_at"] = SiteDateTimeField(
            label="Site became aware",
            zone=site,
            fold=EARLIER,
            required=False,
            help_text=(
                "Required for a serious event: the sponsor must have the report within 24 hours."
            ),
        )
        terms = CtcaeTerm.objects.all()
        self.fields["term"] = TermChoiceField(queryset=terms, label="CTCAE v5.0 term")
        self.fields["term"].choices = grouped_term_choices(terms)
        self.fields["term"].widget.attrs["data-ae-term"] = ""
        self.fields.update(model_fields)
        self.fields["grade"] = forms.TypedChoiceField(
            choices=[("", "—")] + [(g, f"Grade {g}") for g in GRADES],
            coerce=int,
            label="CTCAE grade",
            help_text="Only the grades the term has.",
        )
        self.fields["grade"].widget.attrs["data-ae-grade"] = ""
        self.fields["serious"].help_text = "If serious, tick at least one criterion below."
        # Put the fields in CRF order.
        order = ["term", *[f for f in AE_FIELDS if f != "term"]]
        self.order_fields(order)
        self.drugs = tuple(drugs)
        for drug in self.drugs:
            label = drug_name(drug)
            self.fields[f"causality_{drug}"] = forms.ChoiceField(
                choices=[("", "—"), *Causality.choices], label=f"Causality to {label}"
            )
            self.fields[f"action_{drug}"] = forms.ChoiceField(
                choices=[("", "—"), *ActionTaken.choices], label=f"Action taken with {label}"
            )
        if editing:
            self.fields["reason"] = reason_field()

    @staticmethod
    def initial_from(ae: AdverseEvent) -> dict:
        initial = {name: getattr(ae, name) for name in AE_FIELDS}
        initial["term"] = ae.term_id
        for row in ae.causalities.all():
            initial[f"causality_{row.drug}"] = row.causality
            initial[f"action_{row.drug}"] = row.action_taken
        return initial

    def service_data(self, current: AdverseEvent | None = None) -> dict:
        """The cleaned data as keyword arguments of the AE services.

        The form shows times to the minute: an unchanged awareness time keeps its seconds.
        """
        data = {name: self.cleaned_data.get(name) for name in AE_FIELDS}
        aware = data.get("site_aware_at")
        if (
            current is not None
            and current.site_aware_at
            and aware == current.site_aware_at.replace(second=0, microsecond=0)
        ):
            data["site_aware_at"] = current.site_aware_at
        for name in ("verbatim_term", "treatment_details"):
            data[name] = data[name] or ""
        for name in ("ongoing", "serious", "immune_related", "treatment_given"):
            data[name] = bool(data[name])
        for name in SERIOUS_CRITERIA_FIELDS:
            data[name] = bool(data[name])
        if self.drugs:
            data["causality"] = {
                drug: {
                    "causality": self.cleaned_data[f"causality_{drug}"],
                    "action_taken": self.cleaned_data[f"action_{drug}"],
                }
                for drug in self.drugs
            }
        return data

    def criteria_fields(self):
        return [self[name] for name in SERIOUS_CRITERIA_FIELDS]


class NewAdverseEventForm(OneTimeSubmissionMixin, AdverseEventForm):
    """A new AE: one record per submission, however many clicks on "Save"."""


class SaeReportForm(forms.Form):
    """When the report reached the sponsor, in the site's local time. Of a repeated hour
    (clocks going back), the later reading: the report is never taken as earlier than it may
    have been."""

    def __init__(self, *args, correcting=False, site=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["reported_at"] = SiteDateTimeField(
            label="Reported to the sponsor at", zone=site, fold=LATER
        )
        if correcting:
            self.fields["reason"] = reason_field()
