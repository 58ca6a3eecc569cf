"""Test data builders and fixtures: the one place tests take their data from.

They create records through the services, as users would. ``subjects`` (sites, users, subjects,
dates), ``eligibility`` (a complete, eligible, signed assessment), ``randomization`` (lists,
randomized subjects), ``ctcae`` (the dictionary from EDC_REFERENCE_DATA), ``reference`` (reference
files), ``pages`` (what a page offers), ``worlds`` (a study built once per module) and
``browser`` (headless Chromium for Playwright tests).
"""

from .ctcae import ctcae, ctcae_dictionary, term
from .eligibility import eligible_data, make_eligible_assessment
from .pages import LOGOUT_FORM, token_in, write_forms
from .randomization import (
    TEST_SEED,
    ensure_active_list,
    make_eligible_subject,
    make_randomized_subject,
    make_subject_in_arm,
)
from .reference import reference_path
from .subjects import PASSWORD, days_ago, make_site, make_subject, make_user, site_today

__all__ = [
    "LOGOUT_FORM",
    "PASSWORD",
    "TEST_SEED",
    "ctcae",
    "ctcae_dictionary",
    "days_ago",
    "eligible_data",
    "ensure_active_list",
    "make_eligible_assessment",
    "make_eligible_subject",
    "make_randomized_subject",
    "make_site",
    "make_subject",
    "make_subject_in_arm",
    "make_user",
    "reference_path",
    "site_today",
    "term",
    "token_in",
    "write_forms",
]
