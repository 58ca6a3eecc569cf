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

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from django.db import connection, transaction
from django.db.models import (
    Case,
    DateField,
    F,
    Max,
    Prefetch,
    QuerySet,
    When,
)
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


# --- the endpoints report: counts per arm and time, from the database ---------------------------

# PFS and OS of each course, by the rules of ``endpoints.pfs`` and ``endpoints.os_`` written in
# SQL, counted per (parameter, arm, days, event): what a Kaplan-Meier curve needs, in as many
# rows as there are distinct times, whatever the number of subjects. The courses come as
# (arm, randomized, progression, last_assessment, death, last_known_alive), the columns of
# ``endpoints.Course``. tests/test_endpoints.py runs this text on generated courses against the
# Python rules: change them together.
TIME_TO_EVENT_COUNTS_SQL = """
WITH courses (arm, start, progression, last_assessment, death, alive) AS ({courses}),
c AS MATERIALIZED (
    SELECT arm, start, progression, last_assessment, death, alive,
           CASE WHEN progression <= %(cutoff)s THEN progression END AS progression_seen,
           CASE WHEN death <= %(cutoff)s THEN death END AS death_seen,
           CASE WHEN last_assessment >= start THEN LEAST(last_assessment, %(cutoff)s) END
               AS last_adequate
    FROM courses
),
p AS (
    SELECT arm, start, COALESCE(last_adequate, start) AS censor_at,
           LEAST(progression_seen, death_seen) AS event_on
    FROM c
),
due AS (  -- the date the "missed"-th scheduled assessment after censor_at falls due
    SELECT arm, start, censor_at, event_on,
           (CASE WHEN censor_at - start < 0 THEN 0
                 WHEN censor_at - start < %(early_days)s THEN (censor_at - start) / %(first)s
                 ELSE %(early)s + (censor_at - start - %(early_days)s) / %(later)s
            END) + %(missed)s AS n
    FROM p
),
pfs AS (
    SELECT arm, start, censor_at, event_on,
           event_on IS NOT NULL AND NOT (
               %(missed)s > 0 AND event_on > start + %(window)s + CASE
                   WHEN n <= %(early)s THEN %(first)s * n
                   ELSE %(early_days)s + %(later)s * (n - %(early)s) END
           ) AS event
    FROM due
),
rows (parameter, arm, days, event) AS (
    SELECT 'PFS', arm, CASE WHEN event THEN event_on ELSE censor_at END - start + 1, event
    FROM pfs
    UNION ALL
    SELECT 'OS', arm,
           CASE WHEN death_seen IS NOT NULL THEN death_seen
                ELSE GREATEST(
                    LEAST(GREATEST(start, alive, last_assessment, progression, death),
                          %(cutoff)s),
                    start)
           END - start + 1,
           death_seen IS NOT NULL
    FROM c
)
SELECT parameter, arm, days, event, COUNT(*) FROM rows GROUP BY parameter, arm, days, event
"""


@dataclass(frozen=True)
class TimeCount:
    """``subjects`` subjects of ``arm`` with the same PFS or OS: ``days``, event or censored."""

    parameter: str
    arm: str
    days: int
    event: bool
    subjects: int

    @property
    def months(self) -> float:
        return self.days / endpoints.DAYS_PER_MONTH


def count_time_to_event(
    courses_sql: str,
    courses_params,
    *,
    cutoff: date,
    schedule: endpoints.AssessmentSchedule,
) -> list[TimeCount]:
    """``TIME_TO_EVENT_COUNTS_SQL`` over the courses ``courses_sql`` selects (one query)."""
    first = schedule.first_interval_days
    early = -(-max(schedule.switch_day, 0) // first)  # scheduled every ``first`` days until
    named = {
        "cutoff": cutoff,
        "first": first,
        "early": early,
        "early_days": early * first,
        "later": schedule.later_interval_days,
        "window": schedule.window_days,
        "missed": schedule.missed or 0,
    }
    # The courses' own placeholders are positional: name them so the two kinds can mix.
    params = dict(named)
    parts = courses_sql.split("%s")
    if len(parts) - 1 != len(courses_params):
        raise ValueError("One parameter per placeholder of the courses' SQL.")
    text = parts[0]
    for i, (value, part) in enumerate(zip(courses_params, parts[1:], strict=True)):
        params[f"course_{i}"] = value
        text += f"%(course_{i})s" + part
    sql = TIME_TO_EVENT_COUNTS_SQL.replace("{courses}", text)
    # The planner counts each correlated subquery of the courses once per subject and would
    # JIT-compile the query, which takes longer than running it.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, params)
        return [TimeCount(*row) for row in cursor.fetchall()]


def _courses_sql(user) -> tuple[str, list] | None:
    """The randomized subjects ``user`` may see, as the columns of ``endpoints.Course``
    (``courses`` above, the same dates): SQL and parameters to run inside
    ``TIME_TO_EVENT_COUNTS_SQL``, each CRF's dates grouped per subject and joined by hash."""
    allocations = Allocation.objects.all()
    if user is not None:
        allocations = access.scope_to_user(allocations, user)
    if allocations.query.is_empty():
        return None
    parts = {
        "a": allocations.order_by()
        .annotate(
            randomized_on=RandomizationDate(""),
            died_on=Case(
                When(subject__status=SubjectStatus.DIED, then=F("subject__status_date")),
                output_field=DateField(),
            ),
        )
        .values_list("subject_id", "arm", "randomized_on", "died_on"),
        "t": efficacy_selectors.progression_and_last_adequate_dates(),
        "e": EndOfStudy.objects.filter(death_date__isnull=False)
        .order_by()
        .values_list("subject_id", "death_date"),
        "f": SurvivalFollowUp.objects.order_by()
        .values("subject_id")
        .annotate(alive=Max("last_known_alive_date"))
        .values_list("subject_id", "alive"),
    }
    compiled = {name: qs.query.sql_with_params() for name, qs in parts.items()}
    sql = (
        "SELECT a.arm, a.randomized, t.progression, t.last_adequate,"
        " COALESCE(e.death_date, a.died_on), f.alive"
        " FROM ({a}) a (subject_id, arm, randomized, died_on)"
        " LEFT JOIN ({t}) t (subject_id, progression, last_adequate) USING (subject_id)"
        " LEFT JOIN ({e}) e (subject_id, death_date) USING (subject_id)"
        " LEFT JOIN ({f}) f (subject_id, alive) USING (subject_id)"
    ).format(**{name: text for name, (text, _) in compiled.items()})
    return sql, [p for name in "atef" for p in compiled[name][1]]


def time_to_event_counts(user=None, *, cutoff: date | None = None) -> list[TimeCount]:
    """PFS and OS of every randomized subject ``user`` may see, at the data cut-off, counted
    per arm, days and event (the same values as ``time_to_event``: in one query on PostgreSQL)."""
    cutoff = cutoff or data_cutoff()
    if connection.vendor != "postgresql":  # SQLite, the zero-setup demo: counted in Python
        counted = Counter(
            (r.parameter, r.arm, r.days, r.event) for r in time_to_event(user, cutoff=cutoff)
        )
        return [TimeCount(*key, n) for key, n in sorted(counted.items())]
    courses = _courses_sql(user)
    if courses is None:
        return []
    return count_time_to_event(*courses, cutoff=cutoff, schedule=assessment_schedule())


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
    """Kaplan-Meier per arm of PFS and OS (in months), with numbers at risk every 3 months,
    fitted from the counts per arm and time (``time_to_event_counts``): the page's work is
    bounded by the distinct times, not by the subjects."""
    counts = time_to_event_counts(user, cutoff=cutoff)
    summaries = []
    for parameter in (endpoints.PFS, endpoints.OS):
        mine = [c for c in counts if c.parameter == parameter]
        longest = max((c.months for c in mine), default=0.0)
        at_times = tuple(
            float(t) for t in range(0, int(longest) + AT_RISK_EVERY_MONTHS, AT_RISK_EVERY_MONTHS)
        )
        arms = []
        for arm in Arm:
            group = sorted((c for c in mine if c.arm == arm), key=lambda c: (c.days, c.event))
            km = endpoints.kaplan_meier(
                arm.label,
                [c.months for c in group],
                [c.event for c in group],
                counts=[c.subjects for c in group],
                at_times=at_times,
            )
            arms.append(ArmEstimate(arm.value, arm.label, km))
        label = "Progression-free survival" if parameter == endpoints.PFS else "Overall survival"
        summaries.append(EndpointSummary(parameter, label, arms, at_times))
    return summaries
