"""Plausibility of dates and free text, for every CRF (model field validators).

The study period runs from ``EDC_STUDY_START`` (the first site opened: October 2020) to today:
a screening, consent, status or adverse-event date outside it is a typo (a wrong year, a swapped
day and month), refused at entry with a sentence. Dates of medical history (the last surgery,
the last vaccine...) are not bound to the study period, only to the past.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.utils import timezone

# Free text: long enough for a clinical narrative, short enough to stay a CRF field.
TEXT_LIMIT = 2000


def study_start() -> date:
    return settings.EDC_STUDY_START


def latest_today() -> date:
    """Today's date where the day is furthest ahead (UTC+14). A site's local date runs up to
    14 hours ahead of UTC's: a date after this one is in the future everywhere, while a site's
    own "today" (a Shanghai morning is still yesterday in UTC) is never refused."""
    return (timezone.now() + timedelta(hours=14)).date()


def not_in_future(value: date):
    if value and value > latest_today():
        raise ValidationError("This date is in the future.")


def not_before_study_start(value: date | datetime):
    if value is None:
        return
    day = timezone.localdate(value) if isinstance(value, datetime) else value
    if day < study_start():
        raise ValidationError(
            f"This date is before the study started ({study_start():%d %b %Y}): check the year."
        )


def bounded_text(limit: int = TEXT_LIMIT) -> MaxLengthValidator:
    return MaxLengthValidator(
        limit,
        f"Keep this to {limit} characters (it has %(show_value)d): attach the rest to the source.",
    )
