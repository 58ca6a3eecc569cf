"""Forms of the query pages. They only collect input; ``services`` decides (and refuses with a
sentence, which the views put on the form)."""

from __future__ import annotations

from django import forms
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import capfirst

from core.forms import OneTimeSubmissionMixin

from .models import ResponseReason


def safe_next(request, url: str | None) -> str:
    """``url`` if it is a page of this site (a ``next`` back to a CRF page), else "". The forms
    carry ``next`` as a hidden input of their own: the views read it from the request."""
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return ""


def _text(label: str, rows: int = 2) -> forms.CharField:
    return forms.CharField(label=label, widget=forms.Textarea(attrs={"rows": rows}))


class AnswerForm(forms.Form):
    """The site's answer: a reason from the usual vocabulary and the text."""

    reason = forms.ChoiceField(
        label="Response", choices=[("", "— choose —"), *ResponseReason.choices]
    )
    text = _text("Answer")


class TextForm(forms.Form):
    """Close, confirm correct, reopen, cancel: a sentence for the thread and the audit trail."""

    text = _text("Reason")

    def __init__(self, *args, label: str = "Reason", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"].label = label


class RaiseForm(OneTimeSubmissionMixin, forms.Form):
    """A manual query on one field (or the whole record) of one CRF record (raised once,
    whatever the clicks)."""

    field = forms.ChoiceField(label="Field", required=False)
    message = _text("Question to the site", rows=3)

    def __init__(self, *args, fields=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["field"].choices = [("", "The whole record")] + [
            (f.name, capfirst(f.verbose_name)) for f in fields
        ]


def model_key(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


class BulkRaiseForm(forms.Form):
    """The same manual query on many subjects: one CRF field (a CRF each subject has once), the
    question, and the subjects (their ids, among those the user may raise queries on)."""

    target = forms.ChoiceField(label="CRF and field")
    message = _text("Question to the site", rows=3)
    subjects = forms.ModelMultipleChoiceField(
        queryset=None, widget=forms.CheckboxSelectMultiple, label="Subjects"
    )

    def __init__(self, *args, models=(), fields_of=None, subjects=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.models = {model_key(m): m for m in models}
        choices = [("", "— choose the CRF field —")]
        for key, model in self.models.items():
            group = [(f"{key}:", "The whole record")] + [
                (f"{key}:{f.name}", capfirst(f.verbose_name)) for f in fields_of(model)
            ]
            choices.append((capfirst(model._meta.verbose_name), group))
        self.fields["target"].choices = choices
        self.fields["subjects"].queryset = subjects
        self.fields["subjects"].error_messages["required"] = "Choose at least one subject."

    def clean_target(self):
        key, _, field = self.cleaned_data["target"].partition(":")
        return self.models[key], field
