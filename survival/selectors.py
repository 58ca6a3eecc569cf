"""Reads of the survival CRFs, and the dates the endpoints are computed from.

``courses(user)`` gathers every randomized subject's dates set-wise (a handful of queries for
the whole study, whatever its size): randomization (the site's date of the allocation,
``randomization.selectors.RandomizationDate``, as the randomization service dates the subject's
status), arm, first progression and last adequate
tumor assessment (``efficacy.selectors``: derived RECIST 1.1 responses), death (the end of
study's date of death, else the status date of a subject recorded as died) and the last known
alive date (the follow-up contacts). ``survival.endpoints`` turns them into PFS and OS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db.models import Max, Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone

from core import access
from core.contributions import CalendarFacts
from efficacy import selectors as efficacy_selectors
from randomization.arms import Arm
from randomization.models import Allocation
from randomization.selectors import RandomizationDate
from subjects.models import Subject, SubjectStatus
from subjects.selectors import visible_subject

from . import endpoints
from .models import EndOfStudy, EndOfTreatment, SubsequentTherapy, SurvivalFollowUp
from .settings import assessment_schedule, survival_settings


def end_of_treatment(subject: Subject) -> EndOfTreatment | None:
    return EndOfTreatment.objects.filter(subject=subject).select_related("adverse_event").first()


def end_of_study(subject: Subject) -> EndOfStudy | None:
    return EndOfStudy.objects.filter(subject=subject).select_related("death_adverse_event").first()


def subject_follow_ups(subject: Subject) -> QuerySet:
    return (
        SurvivalFollowUp.objects.filter(subject=subject)
        .prefetch_related(
            Prefetch("therapies", queryset=SubsequentTherapy.objects.order_by("start_date", "pk"))
        )
        .order_by("contact_number")
    )


def visible_follow_up(user, identifier: str, number: int) -> tuple[Subject, SurvivalFollowUp]:
    """The subject and its follow-up contact ``number``, if the user may see them (else 404)."""
    subject = visible_subject(user, identifier)
    return subject, get_object_or_404(subject_follow_ups(subject), contact_number=number)


# A subject in one of these statuses is no longer followed from its status date.
FOLLOW_UP_ENDED = (SubjectStatus.WITHDRAWN, SubjectStatus.DIED, SubjectStatus.COMPLETED)


def calendar_facts(subject_ids: Iterable[int]) -> dict[int, CalendarFacts]:
    """What the visit calendar (``treatment.selectors.calendars``, this app's
    ``calendar_facts``) needs of the CRFs after the last dose of ``subject_ids``, in one query:
    {subject id: facts}

    * ``end_of_treatment`` and ``last_dose``: the end of treatment's date of last dose (the
      safety follow-up counts from it, the survival follow-up too);
    * ``survival_contacts_done``: the dates of the follow-up contacts;
    * ``follow_up_until``: the end of follow-up, the earliest of the date of death, the end of
      study and the status date of a subject withdrawn, died or completed (a death recorded by a
      fatal adverse event, before its end of study): nothing is expected after it.
    """
    ids = subject_ids if isinstance(subject_ids, QuerySet) else list(subject_ids)
    rows = (
        Subject.objects.filter(pk__in=ids)
        .order_by()
        .values_list(
            "pk",
            "end_of_treatment__last_dose_date",
            "end_of_study__end_date",
            "end_of_study__death_date",
            "status",
            "status_date",
            "survival_follow_ups__contact_date",  # a row per contact (one without)
        )
    )
    known: dict[int, tuple[date | None, date | None]] = {}  # last dose, end of follow-up
    contacts: dict[int, list[date]] = {}
    for subject_id, last_dose, end_date, death_date, status, status_date, contact in rows:
        if subject_id not in known:
            ended = [d for d in (end_date, death_date) if d is not None]
            if status in FOLLOW_UP_ENDED and status_date is not None:
                ended.append(status_date)
            known[subject_id] = (last_dose, min(ended, default=None))
        if contact is not None:
            contacts.setdefault(subject_id, []).append(contact)
    return {
        subject_id: CalendarFacts(
            end_of_treatment=last_dose,
            last_dose=last_dose,
            survival_contacts_done=tuple(contacts.get(subject_id, ())),
            follow_up_until=follow_up_until,
        )
        for subject_id, (last_dose, follow_up_until) in known.items()
    }


def data_cutoff() -> date:
    """The data cut-off of the endpoints (the setting, else today)."""
    return survival_settings()["data_cutoff"] or timezone.localdate()


def courses(user=None, subject_ids=None) -> list[endpoints.Course]:
    """Every randomized subject ``user`` may see (None: all sites), as ``endpoints.Course``."""
    allocations = Allocation.objects.all()
    if user is not None:
        allocations = access.scope_to_user(allocations, user)
    if subject_ids is not None:
        allocations = allocations.filter(subject_id__in=list(subject_ids))
    rows = list(
        allocations.order_by("subject__site__code", "subject__sequence")
        .annotate(randomized_on=RandomizationDate(""))
        .values_list(
            "subject_id",
            "subject__subject_identifier",
            "arm",
            "randomized_on",
            "subject__status",
            "subject__status_date",
        )
    )
    ids = [row[0] for row in rows]
    progression = efficacy_selectors.progression_dates(ids)
    assessed = efficacy_selectors.last_adequate_assessment_dates(ids)
    deaths = dict(
        EndOfStudy.objects.filter(subject_id__in=ids, death_date__isnull=False).values_list(
            "subject_id", "death_date"
        )
    )
    alive = dict(
        SurvivalFollowUp.objects.filter(subject_id__in=ids)
        .order_by()
        .values("subject_id")
        .annotate(last=Max("last_known_alive_date"))
        .values_list("subject_id", "last")
    )
    result = []
    for pk, identifier, arm, randomized_on, status, status_date in rows:
        death = deaths.get(pk) or (status_date if status == SubjectStatus.DIED else None)
        result.append(
            endpoints.Course(
                subject=identifier,
                randomized=randomized_on,
                arm=arm,
                progression=progression.get(pk),
                last_assessment=assessed.get(pk),
                death=death,
                last_known_alive=alive.get(pk),
            )
        )
    return result


def time_to_event(user=None, *, cutoff: date | None = None) -> list[endpoints.TimeToEvent]:
    """PFS then OS of every randomized subject ``user`` may see, at the data cut-off."""
    return endpoints.endpoints(
        courses(user), cutoff=cutoff or data_cutoff(), schedule=assessment_schedule()
    )


@dataclass(frozen=True)
class ArmEstimate:
    arm: str
    label: str
    km: endpoints.KaplanMeier


@dataclass(frozen=True)
class EndpointSummary:
    parameter: str
    label: str
    arms: list[ArmEstimate]
    at_times: tuple[float, ...]


AT_RISK_EVERY_MONTHS = 3


def endpoint_summaries(user=None, *, cutoff: date | None = None) -> list[EndpointSummary]:
    """Kaplan-Meier per arm of PFS and OS (in months), with numbers at risk every 3 months."""
    rows = time_to_event(user, cutoff=cutoff)
    summaries = []
    for parameter in (endpoints.PFS, endpoints.OS):
        mine = [r for r in rows if r.parameter == parameter]
        longest = max((r.months for r in mine), default=0.0)
        at_times = tuple(
            float(t) for t in range(0, int(longest) + AT_RISK_EVERY_MONTHS, AT_RISK_EVERY_MONTHS)
        )
        arms = []
        for arm in Arm:
            group = [r for r in mine if r.arm == arm]
            km = endpoints.kaplan_meier(
                arm.label,
                [r.months for r in group],
                [r.event for r in group],
                at_times=at_times,
            )
            arms.append(ArmEstimate(arm.value, arm.label, km))
        label = "Progression-free survival" if parameter == endpoints.PFS else "Overall survival"
        summaries.append(EndpointSummary(parameter, label, arms, at_times))
    return summaries
