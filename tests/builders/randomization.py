"""Randomization test data for every app's tests: an active list and randomized subjects.

``make_randomized_subject(site, by=coordinator, ecog=1)``: a consented subject with a signed,
eligible assessment (any CRF field can be overridden), randomized through the service.
"""

from __future__ import annotations

from core.roles import Role
from randomization import selectors, services
from randomization.models import RandomizationList
from subjects.models import Site, Subject

from .eligibility import make_eligible_assessment
from .subjects import make_subject, make_user

TEST_SEED = 20240601


def ensure_active_list(*, seed: int = TEST_SEED, slots_per_stratum: int = 40) -> RandomizationList:
    """The active list, generated (seed ``TEST_SEED``) if there is none."""
    return selectors.active_list() or services.generate_randomization_list(
        seed=seed, slots_per_stratum=slots_per_stratum, block_sizes=(4, 6)
    )


def make_eligible_subject(site: Site, *, by=None, **assessment_overrides) -> Subject:
    """A consented subject in screening with a signed, eligible assessment (not randomized)."""
    by = by or make_user(Role.SITE_STAFF, site)
    subject = make_subject(site, by=by)
    make_eligible_assessment(subject, by=by, **assessment_overrides)
    return subject


def make_randomized_subject(site: Site, *, by=None, **assessment_overrides) -> Subject:
    """A consented, eligible (signed) subject, randomized by ``by`` (default: new site staff)."""
    by = by or make_user(Role.SITE_STAFF, site)
    ensure_active_list()
    subject = make_eligible_subject(site, by=by, **assessment_overrides)
    services.randomize(subject, by)
    return Subject.objects.get(pk=subject.pk)


def make_subject_in_arm(arm: str, site: Site, *, by=None, **assessment_overrides) -> Subject:
    """A randomized subject of ``arm`` (the list's blocks hold both arms: a few tries)."""
    for _ in range(12):
        subject = make_randomized_subject(site, by=by, **assessment_overrides)
        if selectors.arm_of(subject) == arm:
            return subject
    raise AssertionError(f"no subject randomized to arm {arm} in 12 tries")
