"""Form helpers shared by the site-staff web forms.

* ``SiteDateTimeField``: a date-time entered in the local time of the record's site, with the
  zone named in its label, cleaned to the UTC moment (``core.site_time``).
* ``OneTimeSubmissionMixin``: a create form that cannot create its record twice (a double click
  on "Save", a resubmitted page): a hidden one-time token, claimed with the record
  (``core.models.SubmissionToken``).
* ``run_service``: a service's refusal shown on the form, never a 500.
* ``FormRenderer``: Django's form and widget templates rendered by Jinja2.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, cast

from django import forms
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.fields import BaseTemporalField
from django.forms.renderers import DjangoTemplates, Jinja2
from django.http import QueryDict
from django.template import TemplateDoesNotExist
from django.utils.dateparse import parse_datetime

from .audit import require_visible_reason
from .errors import DomainError
from .models import SubmissionToken
from .site_time import (
    EARLIER,
    NonexistentLocalTime,
    OutOfRangeLocalTime,
    check_in_range,
    from_site_time,
    to_site_time,
    zone_name,
)

LOCAL_INPUT_FORMAT = "%Y-%m-%dT%H:%M"


class FormRenderer(Jinja2):
    """Django's own form and widget templates through Jinja2: the same HTML (Django ships both
    sets), drawn several times faster, which CRF pages of a hundred fields feel. A template
    Django ships for its own engine only (the admin's widgets) is drawn by that engine."""

    @cached_property
    def _django_engine(self) -> DjangoTemplates:
        return DjangoTemplates()

    def get_template(self, template_name):
        try:
            return super().get_template(template_name)
        except TemplateDoesNotExist:
            return self._django_engine.get_template(template_name)


class DateInput(forms.DateInput):
    input_type = "date"


class SiteDateTimeInput(forms.DateTimeInput):
    """The browser's date-and-time picker; it shows and sends the site's wall-clock time."""

    input_type = "datetime-local"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format=LOCAL_INPUT_FORMAT)


class SiteDateTimeField(forms.DateTimeField):
    """A date-time typed in the local time of a site, cleaned to the aware UTC moment.

    ``zone`` is the record's site (or a record with a ``site``, or a zone name); its IANA name
    is added to the label ("Site became aware (Asia/Shanghai time)"). A value with an explicit
    UTC offset is taken as it is. A wall-clock time the clocks skip (spring forward) is refused;
    one they repeat (fall back) is read as the ``fold`` occurrence: EARLIER or LATER, whichever
    is the safe reading for the field (an SAE awareness time: the earlier one starts the
    reporting clock sooner). A time outside ``core.site_time``'s range (year 1, 31 Dec 9999) is
    refused with the range, before a conversion overflows.
    """

    widget = SiteDateTimeInput
    input_formats = [LOCAL_INPUT_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]

    def __init__(self, *, zone=None, fold: int = EARLIER, **kwargs):
        super().__init__(**kwargs)
        self.fold = fold
        self.zone_name = zone_name(zone)
        if self.label:
            self.label = f"{self.label} ({self.zone_name} time)"

    def prepare_value(self, value):
        """An aware value is shown as the site's wall-clock time."""
        if isinstance(value, datetime) and value.tzinfo is not None:
            return to_site_time(value, self.zone_name).replace(tzinfo=None)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            result = value
        else:
            value = str(value).strip()
            try:
                parsed = parse_datetime(value)
            except ValueError:
                parsed = None
            # The accepted local formats, or "Enter a valid date/time." (``value`` is not empty:
            # Django's parse gives a datetime or raises).
            result = parsed or cast(datetime, BaseTemporalField.to_python(self, value))
        try:
            if result.tzinfo is not None:
                return check_in_range(result)
            return from_site_time(result, self.zone_name, fold=self.fold)
        except OutOfRangeLocalTime as exc:
            raise ValidationError(str(exc), code="out_of_range") from exc
        except NonexistentLocalTime as exc:
            raise ValidationError(str(exc), code="nonexistent_time") from exc

    def has_changed(self, initial, data):
        """To the minute, as the field shows it: an untouched value is not a change."""
        try:
            data = self.to_python(data)
        except ValidationError:
            return True
        if isinstance(initial, datetime) and isinstance(data, datetime):
            return initial.replace(second=0, microsecond=0) != data.replace(second=0, microsecond=0)
        return (initial or None) != data


SUBMISSION_FIELD = "submission"
STALE_FORM = "This form is out of date or was altered: check the values and save again."
SAVED_BEFORE = (
    "This form had already been saved (a second click or a page sent again): nothing was "
    "recorded twice."
)


class _SavedBefore(Exception):
    pass


# The mixins below go before a Form (or ModelForm) class; the type checker reads them as one.
if TYPE_CHECKING:
    _FormBase = forms.Form
else:
    _FormBase = object


class OneTimeSubmissionMixin(_FormBase):
    """A create form that makes its record once, whatever the clicks.

    A hidden ``submission`` token (fresh each time the form is shown) is claimed in the transaction
    of ``save_once``: a second POST of it creates nothing; refused input keeps the token. Views ask
    ``is_repeat(user)`` before validating and redirect to ``repeat_of`` after::

        if request.method == "POST" and not form.is_repeat(user) and form.is_valid():
            record = form.save_once(user, lambda: services.create(...))
        if form.repeat_of is not None:
            messages.info(request, form.SAVED_BEFORE)
            return redirect(form.repeat_of or fallback)
    """

    SAVED_BEFORE = SAVED_BEFORE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields[SUBMISSION_FIELD] = forms.UUIDField(
            widget=forms.HiddenInput,
            initial=uuid.uuid4,
            error_messages={"required": STALE_FORM, "invalid": STALE_FORM},
        )
        self.repeat_of: str | None = None

    def full_clean(self):
        super().full_clean()
        if self.is_bound and SUBMISSION_FIELD in self.errors:
            # The page shown again gets a fresh token: the one sent is missing or broken.
            data = cast(QueryDict, self.data).copy()  # request.POST, or a dict: copied mutable
            data[self.add_prefix(SUBMISSION_FIELD)] = str(uuid.uuid4())
            self.data = data

    def _posted_token(self) -> uuid.UUID | None:
        try:
            return uuid.UUID(str(self.data.get(self.add_prefix(SUBMISSION_FIELD), "")))
        except ValueError:
            return None

    def is_repeat(self, user) -> bool:
        """Was this very form (its token) saved before by ``user``? Then ``repeat_of`` is set."""
        key = self._posted_token() if self.is_bound else None
        if key is None:
            return False
        found = SubmissionToken.objects.filter(key=key, user=user).values_list("result_url")
        row = found.first()
        if row is None:
            return False
        self.repeat_of = row[0]
        return True

    def save_once(self, user, create, *, url_of=None):
        """The record ``create()`` made; None when the service refused (the errors are on the
        form) or when this submission was saved meanwhile (a click at the same time: then
        ``repeat_of`` is set, the record's page or "" if unknown)."""
        key = self.cleaned_data[SUBMISSION_FIELD]
        SubmissionToken.objects.purge()

        def once():
            with transaction.atomic():
                token = SubmissionToken.objects.claim(key, user=user)
                if token is None:
                    raise _SavedBefore
                record = create()
                token.made(url_of(record) if url_of else record.get_absolute_url())
                return record

        try:
            return run_service(self, once)
        except _SavedBefore:
            self.repeat_of = SubmissionToken.objects.earlier_result(key, user=user)
            return None


def add_errors(form: forms.Form, error, field: str | None = None, *, add=None) -> None:
    """Put ``error`` (a ``DomainError``, or a ``ValidationError`` of one field, several fields or
    the whole form) on ``form``: each field's errors on that field when the form has it, else on
    the form as a whole (a non-field error). A model's ``clean()`` or a service may name a field
    the form does not show (a date of birth after the consent date is reported on
    ``consent_date``); Django's ``add_error`` would raise ``ValueError`` there, a 500.
    ``add``: the ``add_error`` that records them (default the form's own)."""
    add = add or form.add_error
    if isinstance(error, DomainError):
        error = ValidationError(error.message)
    if not isinstance(error, ValidationError):
        error = ValidationError(error)
    if hasattr(error, "error_dict"):
        for name, errors in error.error_dict.items():
            add(name if name in form.fields else None, errors)
        return
    add(field if field in form.fields else None, error)


class ModelErrorsOnFormMixin(_FormBase):
    """For ModelForms: a model's ``clean()`` may name a field the form does not show; the error
    goes on the form as a whole instead of raising (``add_errors``)."""

    def add_error(self, field, error):
        add_errors(self, error, field, add=super().add_error)


def reason_field(required=True):
    return forms.CharField(
        label="Reason for change",
        required=required,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail with your name and the time.",
        validators=[require_visible_reason],
    )


def run_service(form: forms.Form, call):
    """Run a service call for a valid form; put a refusal on the form instead of raising: a
    domain error, or a validation error of fields the form has (on them) or has not (on the
    form as a whole, ``add_errors``).

    Returns the service's result, or None when it refused (the form then has the errors).
    """
    try:
        return call()
    except (DomainError, ValidationError) as exc:
        add_errors(form, exc)
    return None
