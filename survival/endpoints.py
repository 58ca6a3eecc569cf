"""The trial's time-to-event endpoints, PFS and OS, from plain data: pure and deterministic.

This module knows no database and no Django: it takes each subject's dates (``Course``) and a
data cut-off, and returns the event or censoring date and the time (``TimeToEvent``); and the
Kaplan-Meier estimate of a group of them (``kaplan_meier``, with lifelines). ``selectors``
gathers the dates from the CRFs; the ADTTE export and the statistician's report use both.

Times. ``days`` = end date - randomization date + 1 (the ADaM convention: the day of
randomization is day 1, so a subject censored on the day of randomization has 1 day);
``months`` = days / 30.4375 (the average month of the Gregorian calendar).

Data cut-off. Only what happened on or before the cut-off counts: a progression or death after
it is not seen, and a censoring date after it is brought back to the cut-off (the last adequate
assessment is known only as a date: one after the cut-off censors at the cut-off).

PFS (RECIST v1.1 progression-free survival), the censoring rule (after the FDA guidance
"Clinical Trial Endpoints for the Approval of Cancer Drugs and Biologics", 2018, table of PFS
censoring; and EMA's Appendix 1 on PFS):

1. Event: the first of the date of first documented progression and the date of death from any
   cause, when on or before the cut-off.
2. Event after missed assessments: when that event comes more than ``missed`` scheduled tumor
   assessments after the last adequate assessment (or after randomization when there is none),
   PFS is **censored at the last adequate assessment** (randomization when none), not counted as
   an event: whether progression came earlier is unknown. The schedule is the protocol's:
   every ``first_interval_days`` (6 weeks) up to ``switch_day`` (week 54), then every
   ``later_interval_days`` (9 weeks), each with ``window_days`` of grace (``AssessmentSchedule``).
   ``missed`` = 2 by default (the brief's "death after >= 2 missed assessments"); a schedule
   with ``missed=None`` turns the rule off (the sensitivity analysis that counts every event).
3. No event: censored at the last adequate tumor assessment on or before the cut-off; with no
   adequate assessment after baseline, at randomization (day 1).

Not applied (documented, so that the analysis plan can say so): censoring at the start of a
new anticancer therapy before progression (the data are collected, ``SubsequentTherapy``, but
the primary analysis here counts progression and death whatever came between, as EMA's primary
analysis does); clinical (symptomatic) progression without radiological confirmation is not an
event.

OS (overall survival): event = death from any cause on or before the cut-off; otherwise
censored at the last date the subject was known alive (the latest of the last known alive date,
the last tumor assessment and the progression date: a subject assessed was alive), capped at the
cut-off (a death after the cut-off means alive at the cut-off); randomization when nothing
later is known.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

DAYS_PER_MONTH = 30.4375

PFS = "PFS"
OS = "OS"
PARAMETERS = {PFS: "Progression-free survival (days)", OS: "Overall survival (days)"}

# How the event or the censoring came about (ADTTE EVNTDESC / CNSDTDSC).
PROGRESSION = "Disease progression (RECIST v1.1)"
DEATH = "Death"
CENSORED_LAST_ASSESSMENT = "Last adequate tumor assessment"
CENSORED_NO_ASSESSMENT = "No adequate post-baseline tumor assessment: randomization"
CENSORED_MISSED_ASSESSMENTS = (
    "Progression or death after two or more missed tumor assessments: last adequate assessment"
)
CENSORED_ALIVE = "Last known alive date"
CENSORED_NOTHING_AFTER_RANDOMIZATION = "Nothing known after randomization: randomization"


@dataclass(frozen=True)
class AssessmentSchedule:
    """The protocol's tumor assessment schedule, for the missed-assessment rule."""

    first_interval_days: int = 42  # every 6 weeks ...
    switch_day: int = 378  # ... for 54 weeks (day 378 after randomization) ...
    later_interval_days: int = 63  # ... then every 9 weeks
    window_days: int = 7  # the visit window of an assessment
    missed: int | None = 2  # events after this many missed assessments are censored

    def due_after(self, randomized: date, last: date, count: int) -> date:
        """The date the ``count``-th scheduled assessment after ``last`` falls due (with its
        window): the schedule runs from randomization, so the next due date is the first
        scheduled day after ``last``."""
        day = (last - randomized).days
        scheduled = 0
        found = 0
        while found < count:
            step = (
                self.first_interval_days
                if scheduled < self.switch_day
                else self.later_interval_days
            )
            scheduled += step
            if scheduled > day:
                found += 1
        return randomized + timedelta(days=scheduled + self.window_days)


@dataclass(frozen=True)
class Course:
    """One subject's dates, as the CRFs give them (None when unknown or not happened)."""

    subject: str
    randomized: date
    arm: str = ""
    progression: date | None = None  # first documented progression (RECIST v1.1)
    last_assessment: date | None = None  # last adequate tumor assessment (response not NE)
    death: date | None = None
    last_known_alive: date | None = None


@dataclass(frozen=True)
class TimeToEvent:
    """One subject's PFS or OS: the event (``event`` True) or censoring date and why."""

    subject: str
    arm: str
    parameter: str
    start: date
    end: date
    event: bool
    description: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def months(self) -> float:
        return self.days / DAYS_PER_MONTH

    @property
    def censored(self) -> int:
        """ADaM CNSR: 0 for an event, 1 for a censored time."""
        return 0 if self.event else 1


def _seen(day: date | None, cutoff: date | None) -> date | None:
    """``day`` when it happened on or before the cut-off."""
    if day is None or (cutoff is not None and day > cutoff):
        return None
    return day


def _capped(day: date, cutoff: date | None) -> date:
    return min(day, cutoff) if cutoff is not None else day


def pfs(
    course: Course, *, cutoff: date | None = None, schedule: AssessmentSchedule | None = None
) -> TimeToEvent:
    """Progression-free survival of one subject (the rule: the module docstring)."""
    schedule = schedule or AssessmentSchedule()
    start = course.randomized
    progression = _seen(course.progression, cutoff)
    death = _seen(course.death, cutoff)
    last = course.last_assessment
    if last is not None and last < start:
        last = None  # a baseline scan is not a post-baseline assessment
    if last is not None:
        last = _capped(last, cutoff)
    censor_at = last or start
    censor_why = CENSORED_LAST_ASSESSMENT if last else CENSORED_NO_ASSESSMENT

    def result(end, event, why):
        return TimeToEvent(course.subject, course.arm, PFS, start, end, event, why)

    candidates = [(d, why) for d, why in ((progression, PROGRESSION), (death, DEATH)) if d]
    if candidates:
        when, why = min(candidates, key=lambda c: (c[0], c[1] != PROGRESSION))
        if schedule.missed and when > schedule.due_after(start, censor_at, schedule.missed):
            return result(censor_at, False, CENSORED_MISSED_ASSESSMENTS)
        return result(when, True, why)
    return result(censor_at, False, censor_why)


def os_(course: Course, *, cutoff: date | None = None) -> TimeToEvent:
    """Overall survival of one subject (the rule: the module docstring)."""
    start = course.randomized
    death = _seen(course.death, cutoff)
    if death is not None:
        return TimeToEvent(course.subject, course.arm, OS, start, death, True, DEATH)
    known = [d for d in (course.last_known_alive, course.last_assessment, course.progression) if d]
    if course.death is not None:
        known.append(course.death)  # a death after the cut-off: alive at the cut-off
    alive = _capped(max([start, *known]), cutoff)
    alive = max(alive, start)
    why = CENSORED_ALIVE if alive > start else CENSORED_NOTHING_AFTER_RANDOMIZATION
    return TimeToEvent(course.subject, course.arm, OS, start, alive, False, why)


def endpoints(
    courses: Iterable[Course],
    *,
    cutoff: date | None = None,
    schedule: AssessmentSchedule | None = None,
) -> list[TimeToEvent]:
    """PFS then OS of every course, in the order given."""
    courses = list(courses)
    return [pfs(c, cutoff=cutoff, schedule=schedule) for c in courses] + [
        os_(c, cutoff=cutoff) for c in courses
    ]


# --- Kaplan-Meier -------------------------------------------------------------------------------


@dataclass(frozen=True)
class KaplanMeier:
    """The Kaplan-Meier estimate of one group: the step curve (time, survival) from (0, 1.0),
    the median and its 95 % confidence interval (None: not reached), the event count, and the
    numbers at risk at ``at_times``."""

    label: str
    subjects: int
    events: int
    steps: tuple[tuple[float, float], ...]
    censor_marks: tuple[tuple[float, float], ...]
    median: float | None
    median_ci: tuple[float | None, float | None]
    at_risk: tuple[tuple[float, int], ...] = field(default=())

    @property
    def censored(self) -> int:
        return self.subjects - self.events

    def survival_at(self, t: float) -> float:
        """S(t): the curve's value at time ``t`` (right-continuous steps)."""
        value = 1.0
        for time, survival in self.steps:
            if time > t:
                break
            value = survival
        return value


def _finite(value) -> float | None:
    value = float(value)
    return None if math.isinf(value) or math.isnan(value) else value


def number_at_risk(durations: Sequence[float], t: float) -> int:
    """Subjects still followed at ``t`` (time >= t), as shown under a KM curve."""
    return sum(1 for d in durations if d >= t)


def kaplan_meier(
    label: str,
    durations: Sequence[float],
    events: Sequence[bool],
    *,
    at_times: Sequence[float] = (),
) -> KaplanMeier:
    """The Kaplan-Meier estimate of ``durations`` (any unit) with their ``events`` (True: the
    event, False: censored), by lifelines' ``KaplanMeierFitter``."""
    if len(durations) != len(events):
        raise ValueError("Give one event flag per duration.")
    at_risk = tuple((t, number_at_risk(durations, t)) for t in at_times)
    if not durations:
        return KaplanMeier(label, 0, 0, ((0.0, 1.0),), (), None, (None, None), at_risk)
    from lifelines import KaplanMeierFitter  # a heavy import (pandas, scipy): only when used
    from lifelines.utils import median_survival_times

    fitter = KaplanMeierFitter(label=label).fit(
        [float(d) for d in durations], [bool(e) for e in events]
    )
    curve = fitter.survival_function_[label]
    steps = tuple((float(t), float(s)) for t, s in curve.items())
    if steps[0][0] != 0.0:
        steps = ((0.0, 1.0), *steps)
    estimate = KaplanMeier(
        label, len(durations), sum(map(bool, events)), steps, (), None, (None, None)
    )
    marks = tuple(
        (float(d), estimate.survival_at(float(d)))
        for d, e in sorted(zip(durations, events, strict=True))
        if not e
    )
    ci = median_survival_times(fitter.confidence_interval_)
    return KaplanMeier(
        label=label,
        subjects=len(durations),
        events=sum(map(bool, events)),
        steps=steps,
        censor_marks=marks,
        median=_finite(fitter.median_survival_time_),
        median_ci=(_finite(ci.iloc[0, 0]), _finite(ci.iloc[0, 1])),
        at_risk=at_risk,
    )
