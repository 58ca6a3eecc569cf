from django import forms

from .models import LockLevel


class _BackForm(forms.Form):
    """A monitoring action's form: ``next``, the page to go back to."""

    next = forms.CharField(widget=forms.HiddenInput, required=False)


class VerifyForm(_BackForm):
    """The monitor confirms the record matches the source documents."""


class StateForm(_BackForm):
    """Freeze, lock or reopen (a record or a casebook); reopening needs the reason."""

    level = forms.ChoiceField(choices=LockLevel.choices, label="State")
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to unfreeze or unlock; recorded in the audit trail.",
    )


class StudyLockForm(forms.Form):
    action = forms.ChoiceField(choices=[("lock", "Lock the study"), ("unlock", "Unlock the study")])
    reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required to unlock; recorded in the audit trail.",
    )


class SignCasebookForm(forms.Form):
    password = forms.CharField(
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Re-enter your password to sign.",
    )
