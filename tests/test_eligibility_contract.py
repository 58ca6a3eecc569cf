"""The contract randomization codes against: factors, the randomization check, the test factory."""

from datetime import timedelta

import pytest

from eligibility import selectors, services
from eligibility.models import SignatureKind
from eligibility.services import NotRandomizable, StratificationFactors, StratificationIncomplete
from eligibility.signed_data import data_hash
from tests.builders import (  # noqa: F401
    days_ago,
    make_eligible_assessment,
    make_subject,
)


def test_factory_makes_signed_eligible_assessment(subject, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    assert services.evaluate_eligibility(assessment).is_eligible, services.evaluate_eligibility(
        assessment
    ).summary()
    signature = selectors.active_signature(assessment)
    assert signature.kind == SignatureKind.ELIGIBLE
    assert signature.data_hash == data_hash(assessment)
    assert services.randomization_factors(subject, days_ago(0)) == services.stratification_factors(
        subject
    )


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, StratificationFactors(False, 0, True)),
        ({"ecog": 1, "macrovascular_invasion": True}, StratificationFactors(True, 1, True)),
        (
            {"extrahepatic_spread": True, "prior_locoregional_therapy": False},
            StratificationFactors(True, 0, False),
        ),
    ],
)
def test_stratification_factors(subject, coordinator, overrides, expected):
    make_eligible_assessment(subject, by=coordinator, **overrides)
    assert services.stratification_factors(subject) == expected


def test_stratification_missing_assessment(subject):
    with pytest.raises(StratificationIncomplete, match="no eligibility assessment"):
        services.stratification_factors(subject)


def test_stratification_missing_factor_and_ecog2(subject, coordinator):
    make_eligible_assessment(subject, by=coordinator, sign=False, macrovascular_invasion=None)
    with pytest.raises(StratificationIncomplete, match="macrovascular invasion"):
        services.stratification_factors(subject)
    other = make_subject(subject.site, by=coordinator)
    make_eligible_assessment(other, by=coordinator, sign=False, ecog=2)
    with pytest.raises(StratificationIncomplete, match="ECOG 2"):
        services.stratification_factors(other)


def test_not_randomizable_without_assessment_or_signature(subject, coordinator):
    with pytest.raises(NotRandomizable, match="no eligibility assessment"):
        services.randomization_factors(subject, days_ago(0))
    make_eligible_assessment(subject, by=coordinator, sign=False)
    with pytest.raises(NotRandomizable, match="not signed off"):
        services.randomization_factors(subject, days_ago(0))


def test_not_randomizable_when_windows_no_longer_hold(subject, coordinator):
    # Labs 3 days old today: 14-day recency fails 12 days later.
    make_eligible_assessment(subject, by=coordinator)
    later = days_ago(0) + timedelta(days=12)
    with pytest.raises(NotRandomizable, match="IN09"):
        services.randomization_factors(subject, later)
