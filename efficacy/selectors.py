"""Reads of tumor assessments: the dates the survival endpoints need (set-wise), a subject's
lesions and assessments with the baseline and nadir beside each measurement, and the best
overall response. Pages, admin, exports and the apps above read through these.

For PFS (``survival``): ``progression_dates(subject_ids)`` gives each subject's first assessment
whose **derived** RECIST 1.1 overall response is PD (the rules, not the investigator's reading:
where they differ, an edit check asks the site), and ``last_adequate_assessment_dates``
the last assessment with an evaluable derived response (anything but NE), for censoring.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Max, Min, Prefetch, Q, QuerySet
from django.shortcuts import get_object_or_404

from core.contributions import CalendarFacts
from randomization import selectors as randomization_selectors
from subjects.models import Subject
from subjects.selectors import visible_subject

from . import recist
from .models import (
    NonTargetAssessment,
    NonTargetLesion,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)
from .settings import efficacy_settings

PD = recist.Response.PD.value
NE = recist.Response.NE.value


def progression_dates(subject_ids: Iterable[int]) -> dict[int, date]:
    """{subject id: date of the first assessment with a derived overall response of PD}, for
    the subjects that progressed (one query)."""
    rows = (
        TumorAssessment.objects.filter(subject_id__in=list(subject_ids), derived_response=PD)
        .order_by()
        .values("subject_id")
        .annotate(first=Min("assessment_date"))
        .values_list("subject_id", "first")
    )
    return dict(rows)


def last_adequate_assessment_dates(subject_ids: Iterable[int]) -> dict[int, date]:
    """{subject id: date of the last assessment whose derived overall response is evaluable
    (not NE)}, for the subjects with one (one query). PFS is censored there when the subject
    has not progressed."""
    rows = (
        TumorAssessment.objects.filter(subject_id__in=list(subject_ids))
        .exclude(derived_response__in=[NE, ""])
        .order_by()
        .values("subject_id")
        .annotate(last=Max("assessment_date"))
        .values_list("subject_id", "last")
    )
    return dict(rows)


def progression_and_last_adequate_dates() -> QuerySet:
    """Per subject with an assessment: ``subject_id``, ``progression`` and
    ``last_adequate`` (``progression_dates`` and ``last_adequate_assessment_dates``, NULL
    when none), grouped by the database: for set-wise reads of the endpoints."""
    return (
        TumorAssessment.objects.order_by()
        .values("subject_id")
        .annotate(
            progression=Min("assessment_date", filter=Q(derived_response=PD)),
            last_adequate=Max("assessment_date", filter=~Q(derived_response__in=[NE, ""])),
        )
        .values_list("subject_id", "progression", "last_adequate")
    )


def first_progression(subject: Subject) -> date | None:
    return progression_dates([subject.pk]).get(subject.pk)


def calendar_facts(subject_ids: Iterable[int]) -> dict[int, CalendarFacts]:
    """What the visit calendar (``treatment.selectors.calendars``, this app's
    ``calendar_facts``) needs of the tumor assessments of ``subject_ids``, in one query:
    {subject id: the dates of the assessments done, and the date of the first progression,
    after which no scan is scheduled}. The progression here is the first
    assessment read as PD by the RECIST 1.1 rules or by the investigator: scans stop when the
    investigator sees one (where the two readings differ, edit check REC-001 asks the site)."""
    ids = subject_ids if isinstance(subject_ids, QuerySet) else list(subject_ids)
    rows = (
        TumorAssessment.objects.filter(subject_id__in=ids)
        .order_by()
        .values_list("subject_id", "assessment_date", "derived_response", "investigator_response")
    )
    done: dict[int, list[date]] = {}
    progressions: dict[int, list[date]] = {}
    for subject_id, day, derived, investigator in rows:
        done.setdefault(subject_id, []).append(day)
        if PD in (derived, investigator):
            progressions.setdefault(subject_id, []).append(day)
    return {
        subject_id: CalendarFacts(
            tumor_assessments_done=tuple(days),
            tumor_assessments_until=min(progressions.get(subject_id, ()), default=None),
        )
        for subject_id, days in done.items()
    }


def best_responses(subject_ids: Iterable[int] | None = None) -> dict[int, recist.Best]:
    """{subject id: best overall response with confirmation} of the subjects with an assessment
    (``subject_ids`` None: all), from the stored derived responses (two queries)."""
    rows = TumorAssessment.objects.order_by("subject_id", "assessment_date")
    if subject_ids is not None:
        rows = rows.filter(subject_id__in=list(subject_ids))
    points: dict[int, list] = {}
    for subject_id, day, response in rows.values_list(
        "subject_id", "assessment_date", "derived_response"
    ):
        points.setdefault(subject_id, []).append((day, response))
    randomized = randomization_selectors.randomization_dates(points)
    config = efficacy_settings()
    return {
        subject_id: recist.best_overall_response(
            subject_points,
            randomized_on=randomized.get(subject_id),
            confirmation_days=config["confirmation_days"],
            sd_min_days=config["sd_min_days"],
        )
        for subject_id, subject_points in points.items()
    }


def best_response(subject: Subject) -> recist.Best | None:
    return best_responses([subject.pk]).get(subject.pk)


# --- a subject's lesions and assessments, for the pages ------------------------------------------


def target_lesions(subject: Subject) -> QuerySet:
    return TargetLesion.objects.filter(subject=subject).order_by("number")


def non_target_lesions(subject: Subject) -> QuerySet:
    return NonTargetLesion.objects.filter(subject=subject).order_by("number")


def subject_assessments(subject: Subject) -> QuerySet:
    return (
        TumorAssessment.objects.filter(subject=subject)
        .select_related("subject__site")
        .prefetch_related(
            Prefetch(
                "measurements",
                queryset=TargetMeasurement.objects.select_related("lesion").order_by("lesion_id"),
            ),
            Prefetch(
                "non_target_statuses",
                queryset=NonTargetAssessment.objects.select_related("lesion").order_by("lesion_id"),
            ),
        )
        .order_by("assessment_date", "number")
    )


def visible_assessment(user, identifier: str, number: int) -> tuple[Subject, TumorAssessment]:
    subject = visible_subject(user, identifier)
    return subject, get_object_or_404(subject_assessments(subject), number=number)


@dataclass(frozen=True)
class LesionRow:
    """One target lesion on the assessment page: its baseline, its nadir before the assessment
    (its value at the assessment with the smallest sum so far), and its value now."""

    lesion: TargetLesion
    baseline: Decimal
    nadir: Decimal | None
    current: Decimal | None
    evaluated: bool


def lesion_rows(subject: Subject, assessment: TumorAssessment | None = None) -> list[LesionRow]:
    """The target lesions with their baseline and the values at the nadir before ``assessment``
    (the last assessment with the smallest complete sum, or the baseline), and at ``assessment``."""
    targets = list(target_lesions(subject))
    earlier = [
        a
        for a in subject_assessments(subject)
        if assessment is None
        or (a.assessment_date, a.number) < (assessment.assessment_date, assessment.number)
    ]
    nadir_values = {t.pk: t.diameter for t in targets}
    nadir_sum = sum((t.diameter for t in targets), Decimal(0))
    for a in earlier:
        values = {m.lesion_id: m.diameter for m in a.measurements.all()}
        if targets and all(values.get(t.pk) is not None for t in targets):
            total = sum((values[t.pk] for t in targets), Decimal(0))
            if total <= nadir_sum:
                nadir_sum, nadir_values = total, values
    current = {m.lesion_id: m.diameter for m in assessment.measurements.all()} if assessment else {}
    return [
        LesionRow(
            lesion=t,
            baseline=t.diameter,
            nadir=nadir_values.get(t.pk),
            current=current.get(t.pk),
            evaluated=current.get(t.pk) is not None,
        )
        for t in targets
    ]
