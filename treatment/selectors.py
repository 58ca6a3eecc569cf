"""Reads of treatment: a subject's cycles, doses and sorafenib periods, the visit calendar (from
the randomization date, ``randomization.selectors``), the exposure summary, and the first and
last exposure of many subjects at once (``exposure_spans``, for the SDTM DM dataset). Pages, admin
and the apps above read through these; ``services`` writes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Max, Min, Prefetch, QuerySet
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from adverse_events.models import AdverseEvent
from core import registry
from core.contributions import CalendarFacts
from core.site_time import today_at
from randomization import selectors as randomization_selectors
from randomization.arms import DRUGS_OF_ARM, Arm, StudyDrug, drug_name
from subjects.models import Subject
from subjects.selectors import visible_subject

from . import exposure, schedule
from .models import Cycle, DoseLevel, IvDose, OralDosingPeriod
from .settings import schedule_settings, treatment_settings


def arm_of(subject: Subject) -> Arm | None:
    return randomization_selectors.arm_of(subject)


def study_drugs_of(subject: Subject) -> tuple[str, ...]:
    arm = arm_of(subject)
    return tuple(DRUGS_OF_ARM[arm]) if arm else ()


def subject_cycles(subject: Subject) -> QuerySet:
    return (
        Cycle.objects.filter(subject=subject)
        .select_related("subject__site")
        .prefetch_related(
            Prefetch(
                "iv_doses",
                queryset=IvDose.objects.select_related("adverse_event__term").order_by("drug"),
            )
        )
        .order_by("number")
    )


def subject_oral_periods(subject: Subject) -> QuerySet:
    return (
        OralDosingPeriod.objects.filter(subject=subject)
        .select_related("subject__site", "adverse_event__term")
        .order_by("start_date", "pk")
    )


def visible_cycle(user, identifier: str, number: int) -> tuple[Subject, Cycle]:
    subject = visible_subject(user, identifier)
    return subject, get_object_or_404(subject_cycles(subject), number=number)


def visible_oral_period(user, identifier: str, pk: int) -> tuple[Subject, OralDosingPeriod]:
    subject = visible_subject(user, identifier)
    return subject, get_object_or_404(subject_oral_periods(subject), pk=pk)


def last_dose_dates(subject_ids: Iterable[int], *, now=None) -> dict[int, date]:
    """The last day study drug was taken, of many subjects, in two queries: {subject id: date}
    of those dosed. The last IV administration, or the last stop of a sorafenib period at a
    level other than held (today at the site for a period still going)."""
    ids = list(subject_ids)
    if not ids:
        return {}
    iv = (
        IvDose.objects.filter(cycle__subject_id__in=ids, given_dose_mg__gt=0)
        .exclude(administered_date=None)
        .order_by()
        .values("cycle__subject_id")
        .annotate(last=Max("administered_date"))
        .values_list("cycle__subject_id", "last")
    )
    last: dict[int, date] = dict(iv)
    periods = (
        OralDosingPeriod.objects.filter(subject_id__in=ids)
        .exclude(dose_level=DoseLevel.HELD)
        .select_related("subject__site")
        .order_by()
        .only("subject_id", "stop_date", "subject__site__time_zone")
    )
    for period in periods:
        day = period.stop_date or today_at(period.subject.site, now)
        known = last.get(period.subject_id)
        last[period.subject_id] = day if known is None else max(known, day)
    return last


@dataclass(frozen=True)
class ExposureSpan:
    """A subject's exposure to study drug: the first and last day a drug was taken and the
    drugs taken."""

    first: date
    last: date
    drugs: frozenset[str]


def exposure_spans(subject_ids: Iterable[int] | QuerySet) -> dict[int, ExposureSpan]:
    """{subject id: ExposureSpan} of the subjects among ``subject_ids`` who took study drug (two
    grouped queries, whatever the number of subjects; a queryset of ids is a subquery).

    Exposure is an IV dose given (more than 0 mg, on its administration date) or a sorafenib
    period at a level other than held (from its start date to its stop date; an ongoing period's
    last known exposure is its start date, as SDTM counts RFXENDTC from EXSTDTC where EXENDTC
    is missing). A dose not given and a held period are no exposure."""
    ids = subject_ids if isinstance(subject_ids, QuerySet) else list(subject_ids)
    iv = (
        IvDose.objects.filter(cycle__subject_id__in=ids, given_dose_mg__gt=0)
        .exclude(administered_date=None)
        .order_by()
        .values("cycle__subject_id", "drug")
        .annotate(first=Min("administered_date"), last=Max("administered_date"))
        .values_list("cycle__subject_id", "drug", "first", "last")
    )
    oral = (
        OralDosingPeriod.objects.filter(subject_id__in=ids)
        .exclude(dose_level=DoseLevel.HELD)
        .order_by()
        .values("subject_id", "drug")
        .annotate(first=Min("start_date"), last=Max(Coalesce("stop_date", "start_date")))
        .values_list("subject_id", "drug", "first", "last")
    )
    spans: dict[int, ExposureSpan] = {}
    for subject_id, drug, first, last in (*iv, *oral):
        known = spans.get(subject_id)
        if known is not None:
            first, last = min(first, known.first), max(last, known.last)
        drugs = (known.drugs if known else frozenset()) | {drug}
        spans[subject_id] = ExposureSpan(first, last, drugs)
    return spans


def subject_calendar(subject: Subject, *, today: date | None = None):
    """The subject's visit calendar (``treatment.schedule``), None before randomization
    (``calendars`` of one subject)."""
    return calendars([subject.pk], today=today).get(subject.pk)


def calendars(
    subject_ids: Iterable[int] | None = None,
    *,
    now=None,
    today: date | None = None,
    kinds: Iterable[schedule.VisitKind] | None = None,
) -> dict[int, schedule.Calendar]:
    """The visit calendars of the randomized subjects among ``subject_ids`` (None: all) on
    their site's today at ``now`` (or on ``today``), in a fixed number of queries whatever the
    count: the randomization date (``randomization.selectors``), the cycles done, and the other
    facts from the apps above through their ``calendar_facts``
    (``core.contributions.CalendarFacts``). Once treatment has ended,
    the adverse events' onset and end dates are the ``safety_contacts`` of the safety follow-up
    (``treatment.schedule``). ``kinds``: only the visits of these kinds (what they need is
    read, nothing else)."""
    kinds = frozenset(schedule.VisitKind if kinds is None else kinds)
    subjects = Subject.objects.filter(allocation__isnull=False).order_by()
    if subject_ids is not None:
        subjects = subjects.filter(pk__in=list(subject_ids))
    rows = list(
        subjects.annotate(
            randomized_on=randomization_selectors.RandomizationDate("allocation")
        ).values_list("pk", "randomized_on", "site__time_zone")
    )
    if not rows:
        return {}
    ids = [pk for pk, _, _ in rows]
    # The whole study: the facts are read by a subquery, not a list of every id.
    facts = _calendar_facts(ids, subjects.values("pk") if subject_ids is None else ids, kinds, now)
    settings = schedule_settings()
    todays: dict[str, date] = {}  # time zone -> today there
    result = {}
    for pk, randomized_on, zone in rows:
        if zone not in todays:
            todays[zone] = today or today_at(zone, now)
        known = facts[pk]
        result[pk] = schedule.calendar(
            randomization_date=randomized_on,
            today=todays[zone],
            settings=settings,
            kinds=kinds,
            cycles_done=known.cycles_done,
            tumor_assessments_done=known.apps.tumor_assessments_done,
            tumor_assessments_until=known.apps.tumor_assessments_until,
            end_of_treatment=known.apps.end_of_treatment,
            last_dose=known.last_dose,
            safety_contacts=known.safety_contacts,
            survival_contacts_done=known.apps.survival_contacts_done,
            follow_up_until=known.apps.follow_up_until,
        )
    return result


@dataclass
class _SubjectFacts:
    """A subject's facts for its calendar: the apps' and treatment's own."""

    apps: CalendarFacts = CalendarFacts()
    cycles_done: dict[int, date] = field(default_factory=dict)
    last_dose: date | None = None
    safety_contacts: list[date] = field(default_factory=list)


def _calendar_facts(ids: list[int], wanted, kinds: frozenset, now) -> dict[int, _SubjectFacts]:
    """The calendar facts of ``ids`` (``wanted``: the same ids, or a queryset of them): the
    apps', the cycles done, and after the end of treatment the last dose and the safety contacts
    (each read only when ``kinds`` needs it)."""
    facts = {pk: _SubjectFacts() for pk in ids}
    for facts_of in registry.calendar_facts():
        for subject_id, more in facts_of(wanted).items():
            if subject_id in facts:
                facts[subject_id].apps = facts[subject_id].apps.merged(more)
    for known in facts.values():
        known.last_dose = known.apps.last_dose
    if schedule.VisitKind.CYCLE in kinds:
        cycles = Cycle.objects.filter(subject_id__in=wanted).order_by()
        for subject_id, number, day1 in cycles.values_list("subject_id", "number", "day1_date"):
            facts[subject_id].cycles_done[number] = day1
    if schedule.VisitKind.SAFETY in kinds:
        ended = [pk for pk in ids if facts[pk].apps.end_of_treatment]
        undated = [pk for pk in ended if facts[pk].last_dose is None]
        last_doses = last_dose_dates(undated, now=now)
        contacts = adverse_event_dates_of(ended)
        for pk in ended:
            if facts[pk].last_dose is None:
                facts[pk].last_dose = last_doses.get(pk)
            facts[pk].safety_contacts = contacts.get(pk, [])
    return facts


def adverse_event_dates_of(subject_ids: Iterable[int]) -> dict[int, list[date]]:
    """The onset and end dates of the adverse events of many subjects (one query)."""
    dates: dict[int, list[date]] = {}
    subject_ids = list(subject_ids)
    if not subject_ids:
        return dates
    for subject_id, onset, end in (
        AdverseEvent.objects.filter(subject_id__in=subject_ids)
        .order_by()
        .values_list("subject_id", "onset_date", "end_date")
    ):
        dates.setdefault(subject_id, []).extend(d for d in (onset, end) if d is not None)
    return dates


@dataclass(frozen=True)
class DrugExposure:
    drug: str
    cumulative_mg: Decimal
    rdi: Decimal | None
    administrations: int  # doses given (IV) or periods (oral)
    reductions: int  # doses or periods reduced, held, interrupted, delayed or not given

    @property
    def name(self) -> str:
        return drug_name(self.drug)

    @property
    def rdi_percent(self) -> str:
        return "—" if self.rdi is None else f"{self.rdi * 100:.1f} %"


def iv_exposure(drug: str, doses) -> DrugExposure:
    """Exposure to one IV drug from its dose records (each with its cycle)."""
    values = treatment_settings()
    rows = [
        exposure.IvAdministration(d.given_dose_mg, d.administered_date, d.cycle.weight_kg)
        for d in doses
    ]
    if drug == StudyDrug.BEVACIZUMAB:
        rdi = exposure.iv_rdi(
            rows,
            planned_per_cycle=Decimal(values["bevacizumab_dose_mg_per_kg"]),
            cycle_days=values["cycle_days"],
            per_kg=True,
        )
    else:
        rdi = exposure.iv_rdi(
            rows,
            planned_per_cycle=Decimal(values["toripalimab_dose_mg"]),
            cycle_days=values["cycle_days"],
        )
    changed = sum(
        1
        for d in doses
        if d.delayed or d.interrupted or d.reduced or not d.given_dose_mg or d.deviates
    )
    return DrugExposure(
        drug,
        exposure.cumulative_iv_dose(rows),
        rdi,
        sum(1 for r in rows if r.given_mg > 0),
        changed,
    )


def oral_exposure(periods, *, as_of: date) -> DrugExposure:
    values = treatment_settings()
    rows = [exposure.OralPeriod(p.daily_dose_mg, p.start_date, p.stop_date) for p in periods]
    return DrugExposure(
        StudyDrug.SORAFENIB,
        exposure.cumulative_oral_dose(rows, as_of=as_of),
        exposure.oral_rdi(
            rows, planned_daily_mg=Decimal(values["sorafenib_daily_dose_mg"]), as_of=as_of
        ),
        len(rows),
        sum(1 for p in periods if p.dose_level != "800"),
    )


def subject_exposure(subject: Subject, *, as_of: date | None = None) -> list[DrugExposure]:
    """Cumulative dose and RDI of each study drug of the subject's arm (empty before
    randomization)."""
    as_of = as_of or today_at(subject.site)
    drugs = study_drugs_of(subject)
    result = []
    iv = [d for c in subject_cycles(subject) for d in c.iv_doses.all()]
    for drug in drugs:
        if drug == StudyDrug.SORAFENIB:
            result.append(oral_exposure(list(subject_oral_periods(subject)), as_of=as_of))
        else:
            result.append(iv_exposure(drug, [d for d in iv if d.drug == drug]))
    return result
