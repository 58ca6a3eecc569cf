"""RECIST tumor assessment test data: baseline lesions and follow-up assessments, through the
services as a coordinator would enter them.

``add_baseline(subject, by=coordinator)``: a liver target (40 mm), a lymph-node target (20 mm
short axis) and a lung non-target lesion, scanned ``baseline_days_ago`` days ago.
``add_assessment(subject, by=..., days_ago_=58, measurements={1: 30, 2: 12},
investigator_response="PR")``: a follow-up.
``add_efficacy_records(subject, by=...)``: both, with a PR and then a PD (every form has rows).
"""

from __future__ import annotations

from efficacy import services
from efficacy.models import TumorAssessment

from .subjects import days_ago

DEFAULT_TARGETS = (("liver", "Segment VIII", 40), ("lymph_node", "Porta hepatis node", 20))
DEFAULT_NON_TARGETS = (("lung", "Right lower lobe nodules"),)


def add_baseline(
    subject,
    *,
    by,
    targets=DEFAULT_TARGETS,
    non_targets=DEFAULT_NON_TARGETS,
    baseline_days_ago: int = 100,
    method: str = "CT",
):
    day = days_ago(baseline_days_ago)
    found = [
        services.add_target_lesion(
            subject,
            user=by,
            organ=organ,
            location=location,
            diameter=diameter,
            baseline_date=day,
            method=method,
        )
        for organ, location, diameter in targets
    ]
    found += [
        services.add_non_target_lesion(
            subject, user=by, organ=organ, location=location, baseline_date=day, method=method
        )
        for organ, location in non_targets
    ]
    return found


def add_assessment(
    subject,
    *,
    by,
    days_ago_: int,
    measurements: dict,
    non_targets: dict | None = None,
    new_lesions: bool = False,
    investigator_response: str,
    method: str = "CT",
) -> TumorAssessment:
    """A follow-up assessment (non-target NT1 present unless ``non_targets`` says)."""
    return services.record_assessment(
        subject,
        user=by,
        assessment_date=days_ago(days_ago_),
        method=method,
        measurements=measurements,
        non_targets=non_targets if non_targets is not None else {1: "present"},
        new_lesions=new_lesions,
        new_lesions_description="New liver lesion, segment II" if new_lesions else "",
        investigator_response=investigator_response,
    )


def add_efficacy_records(subject, *, by) -> list[TumorAssessment]:
    """A baseline, a PR (-40 %) and a PD (new lesion): rows in every efficacy form."""
    add_baseline(subject, by=by)
    return [
        add_assessment(
            subject, by=by, days_ago_=58, measurements={1: 28, 2: 8}, investigator_response="PR"
        ),
        add_assessment(
            subject,
            by=by,
            days_ago_=16,
            measurements={1: 30, 2: 9},
            new_lesions=True,
            investigator_response="PD",
        ),
    ]
