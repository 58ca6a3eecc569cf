"""The trial's time-to-event endpoints, PFS and OS, from plain data: pure and deterministic.

No database and no Django: ``selectors`` gathers each subject's dates (``Course``), and the ADTTE
export and the statistician's report both call these functions, so they cannot differ. The
censoring rules (FDA 2018 PFS guidance, EMA Appendix 1), including what is deliberately not
applied, are in README ("PFS and OS"); change them there and here together.
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
    """Progression-free survival of one subject (the rule: README, "PFS and OS")."""
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
    """Overall survival of one subject (the rule: README, "PFS and OS")."""
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
class Step:
    """One distinct time of a Kaplan-Meier curve: the survival just after it, the subjects at
    risk just before it, and the events and censored times at it."""

    time: float
    survival: float
    at_risk: int
    events: int
    censored: int


@dataclass(frozen=True)
class KaplanMeier:
    """The Kaplan-Meier estimate of one group: the step curve (time, survival) from (0, 1.0),
    its life table (``table``: a ``Step`` per distinct time), a censoring mark per distinct
    censored time, the median and its 95 % confidence interval (None: not reached), the event
    count, and the numbers at risk at ``at_times``. Its size is the number of distinct times,
    not of subjects."""

    label: str
    subjects: int
    events: int
    steps: tuple[tuple[float, float], ...]
    censor_marks: tuple[tuple[float, float], ...]
    median: float | None
    median_ci: tuple[float | None, float | None]
    at_risk: tuple[tuple[float, int], ...] = field(default=())
    table: tuple[Step, ...] = field(default=())

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


def number_at_risk(
    durations: Sequence[float], t: float, counts: Sequence[int] | None = None
) -> int:
    """Subjects still followed at ``t`` (time >= t), as shown under a KM curve; ``counts``:
    how many subjects each duration stands for (one each when None)."""
    if counts is None:
        return sum(1 for d in durations if d >= t)
    return sum(n for d, n in zip(durations, counts, strict=True) if d >= t)


def kaplan_meier(
    label: str,
    durations: Sequence[float],
    events: Sequence[bool],
    *,
    at_times: Sequence[float] = (),
    counts: Sequence[int] | None = None,
) -> KaplanMeier:
    """The Kaplan-Meier estimate of ``durations`` (any unit) with their ``events`` (True: the
    event, False: censored), by lifelines' ``KaplanMeierFitter``. ``counts``: how many subjects
    each (duration, event) pair stands for, so that a study's curve is fitted from its distinct
    times (lifelines' integer weights: the same estimate, variance and median as one row per
    subject)."""
    if len(durations) != len(events) or (counts is not None and len(counts) != len(events)):
        raise ValueError("Give one event flag (and one count) per duration.")
    weights = [1] * len(durations) if counts is None else [int(n) for n in counts]
    if any(n < 1 for n in weights):
        raise ValueError("Each count is a number of subjects: at least 1.")
    at_risk = tuple((t, number_at_risk(durations, t, weights)) for t in at_times)
    subjects = sum(weights)
    event_count = sum(n for e, n in zip(events, weights, strict=True) if e)
    if not durations:
        return KaplanMeier(label, 0, 0, ((0.0, 1.0),), (), None, (None, None), at_risk)
    from lifelines import KaplanMeierFitter  # a heavy import (pandas, scipy): only when used
    from lifelines.utils import median_survival_times

    fitter = KaplanMeierFitter(label=label).fit(
        [float(d) for d in durations], [bool(e) for e in events], weights=weights
    )
    curve = fitter.survival_function_[label]
    steps = tuple((float(t), float(s)) for t, s in curve.items())
    if steps[0][0] != 0.0:
        steps = ((0.0, 1.0), *steps)
    survival = dict(steps)
    life = fitter.event_table
    table = tuple(
        Step(float(t), survival[float(t)], round(n), round(d), round(c))
        for t, removed, n, d, c in zip(
            life.index,
            life["removed"],
            life["at_risk"],
            life["observed"],
            life["censored"],
            strict=True,
        )
        if removed > 0
    )
    marks = tuple((step.time, step.survival) for step in table if step.censored)
    ci = median_survival_times(fitter.confidence_interval_)
    return KaplanMeier(
        label=label,
        subjects=subjects,
        events=event_count,
        steps=steps,
        censor_marks=marks,
        median=_finite(fitter.median_survival_time_),
        median_ci=(_finite(ci.iloc[0, 0]), _finite(ci.iloc[0, 1])),
        at_risk=at_risk,
        table=table,
    )
