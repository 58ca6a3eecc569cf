from django import forms

from core import access
from core.audit import require_visible_reason
from core.forms import DateInput, ModelErrorsOnFormMixin, OneTimeSubmissionMixin, reason_field
from core.site_time import today_at

from .models import Site, Subject
from .services import DEMOGRAPHIC_FIELDS


class InitialsMixin(ModelErrorsOnFormMixin):
    def clean_initials(self):
        return self.cleaned_data["initials"].strip().upper()


class RegisterSubjectForm(OneTimeSubmissionMixin, InitialsMixin, forms.ModelForm):
    """Registers one subject per submission, however many clicks on "Save"."""

    class Meta:
        model = Subject
        fields = ["site", *DEMOGRAPHIC_FIELDS]
        widgets = {"screening_date": DateInput(), "date_of_birth": DateInput()}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = Site.objects.filter(
            pk__in=access.data_entry_site_ids(user), active=True
        )
        if self.fields["site"].queryset.count() == 1:
            site = self.fields["site"].initial = self.fields["site"].queryset.get()
            # Screened today at the site (the model's default is UTC's date).
            self.fields["screening_date"].initial = today_at(site)


class DemographicsForm(InitialsMixin, forms.ModelForm):
    reason = reason_field()

    class Meta:
        model = Subject
        fields = list(DEMOGRAPHIC_FIELDS)
        widgets = {"screening_date": DateInput(), "date_of_birth": DateInput()}


class ConsentForm(forms.Form):
    consent_date = forms.DateField(widget=DateInput(), label="Date informed consent signed")
    consent_version = forms.CharField(max_length=30, label="Consent form version")

    def __init__(self, *args, correcting=False, **kwargs):
        super().__init__(*args, **kwargs)
        if correcting:
            self.fields["reason"] = reason_field()


class StatusForm(forms.Form):
    """Offers only the changes the service allows from the subject's status
    (``services.allowed_status_changes``)."""

    status = forms.ChoiceField(label="New status")
    on_date = forms.DateField(widget=DateInput(), label="Date of the change")
    reason = reason_field()

    def __init__(self, *args, choices, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["status"].choices = [(s.value, s.label) for s in choices]


class DeleteSubjectForm(forms.Form):
    reason = forms.CharField(
        label="Why was this subject registered in error?",
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[require_visible_reason],
    )
