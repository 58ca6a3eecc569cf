"""The entry-time rules of the eligibility assessment (``EligibilityAssessment.clean``): each
rule returns {field: message}, so that a form shows every wrong answer beside its field at once."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from core.site_time import today_at

from . import settings as elig_settings
from . import units

if TYPE_CHECKING:
    from .models import EligibilityAssessment


def _no_date_when_answer_is_no(a: EligibilityAssessment) -> dict[str, str]:
    return {
        date_field: "Leave the date empty when the answer is no."
        for flag, date_field in a.DATED_FACTS
        if getattr(a, flag) is False and getattr(a, date_field) is not None
    }


def _follow_up_only_when_asked(a: EligibilityAssessment) -> dict[str, str]:
    errors = {}
    if a.target_lesion_locally_treated is False and a.target_lesion_progressed is not None:
        errors["target_lesion_progressed"] = (
            "Answer only when the target lesion was treated locally."
        )
    if a.other_malignancy_5y is False and a.other_malignancy_cured_in_situ is not None:
        errors["other_malignancy_cured_in_situ"] = (
            "Answer only when there was another malignancy within 5 years."
        )
    return errors


def _reasons_and_dates_given(a: EligibilityAssessment) -> dict[str, str]:
    errors = {}
    if a.investigator_judges_unsuitable and not a.unsuitable_reason.strip():
        errors["unsuitable_reason"] = "Say why the subject is unsuitable."
    if a.pregnancy_test_result and not a.pregnancy_test_date:
        errors["pregnancy_test_date"] = "Give the date of the pregnancy test."
    return errors


FEMALE_ONLY_FIELDS = ("childbearing_potential", "pregnancy_test_date", "pregnancy_test_result")


def _fits_the_subjects_sex(a: EligibilityAssessment) -> dict[str, str]:
    if not a.subject_id:
        return {}
    if a.subject.sex == "M":
        return {
            name: "This applies to female subjects only."
            for name in FEMALE_ONLY_FIELDS
            if getattr(a, name) not in (None, "")
        }
    if a.partner_childbearing_potential is not None:
        return {"partner_childbearing_potential": "This applies to male subjects only."}
    return {}


def _planned_after_consent(a: EligibilityAssessment) -> dict[str, str]:
    planned = a.planned_randomization_date
    consent = a.subject.consent_date if a.subject_id else None
    if planned and consent and planned < consent:
        return {
            "planned_randomization_date": (
                "The planned randomization date is before the informed consent."
            )
        }
    ahead = elig_settings.PLANNED_RANDOMIZATION_MAX_DAYS_AHEAD
    today = today_at(a.subject.site if a.subject_id else None)  # a site date: the site's today
    if planned and planned > today + timedelta(days=ahead):
        return {
            "planned_randomization_date": (
                f"The planned randomization date is more than {ahead} days ahead: the screening "
                "windows would run out. Enter it when the date is known."
            )
        }
    return {}


def _labs_plausible_in_their_unit(a: EligibilityAssessment) -> dict[str, str]:
    """Each lab value as reported: with its unit, and plausible in that unit (the SI range of
    ``settings.PLAUSIBLE_RANGES`` through the unit's factor)."""
    errors = {}
    for name, spec in units.LABS.items():
        value_field, unit_field = units.reported_field(name), units.unit_field(name)
        value = units.as_decimal(getattr(a, value_field))
        code = getattr(a, unit_field)
        if value is None:
            continue
        if not code:
            errors[unit_field] = "Give the unit the laboratory reported."
            continue
        if not spec.accepts(code):
            continue  # the field's choices refuse it
        low, high = elig_settings.plausible_range(name, code)
        if not low <= value <= high:
            symbol = spec.unit(code).symbol
            unit = f" {symbol}" if symbol else ""
            errors[value_field] = (
                f"{units.plain(value)}{unit} is not plausible: enter a value between "
                f"{units.plain(low)} and {units.plain(high)}{unit}; check the unit and the "
                "decimal point."
            )
    return errors


ASSESSMENT_RULES = (
    _labs_plausible_in_their_unit,
    _no_date_when_answer_is_no,
    _follow_up_only_when_asked,
    _reasons_and_dates_given,
    _fits_the_subjects_sex,
    _planned_after_consent,
)
