from django import forms


class ConfirmRandomizationForm(forms.Form):
    """The site user confirms the stratum shown before the subject is randomized."""

    stratum = forms.CharField(widget=forms.HiddenInput)
    confirm = forms.BooleanField(
        label="I confirm that this subject is to be randomized now, in the stratum shown.",
        help_text="Randomization cannot be undone: the allocation stands whatever happens later.",
    )
