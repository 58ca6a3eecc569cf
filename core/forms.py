"""Form helpers shared by the site-staff web forms."""

from django import forms
from django.core.exceptions import ValidationError

from .errors import DomainError


class DateInput(forms.DateInput):
    input_type = "date"


class ModelErrorsOnFormMixin:
    """For ModelForms: a model's ``clean()`` may name a field the form does not show (a date of
    birth after the consent date is reported on ``consent_date``). Django would raise on that;
    show it on the form as a whole instead."""

    def add_error(self, field, error):
        if field is None and hasattr(error, "error_dict"):
            for name, errors in error.error_dict.items():
                super().add_error(name if name in self.fields else None, errors)
            return
        super().add_error(field, error)


def reason_field(required=True):
    return forms.CharField(
        label="Reason for change",
        required=required,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail with your name and the time.",
    )


def run_service(form: forms.Form, call):
    """Run a service call for a valid form; put a refusal on the form instead of raising.

    Returns the service's result, or None when it refused (the form then has the errors).
    """
    try:
        return call()
    except DomainError as exc:
        form.add_error(None, exc.message)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
    return None
