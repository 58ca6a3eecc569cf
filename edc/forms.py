"""Form helpers shared by the site-staff web forms."""

from django import forms
from django.core.exceptions import ValidationError

from .errors import DomainError


class DateInput(forms.DateInput):
    input_type = "date"


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
