"""A subject's visit calendar from the randomization date: pure and deterministic, no database.

One rule for every reader: the pages, the selectors and edit checks TRT-005/TRT-006 all ask
``calendar(...)`` (TRT-005 restates the cycle rule in SQL), so they cannot disagree. The schedule
is nominal (a delay never moves later targets); the numbers are ``ScheduleSettings``'. The visit
series, date matching and statuses are in README ("The visit calendar").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum


@dataclass(frozen=True)
class ScheduleSettings:
    cycle_days: int = 21
    cycle_window_days: int = 3
    tumor_interval_weeks: int = 6
    tumor_early_phase_weeks: int = 54
    tumor_late_interval_weeks: int = 9
    tumor_window_days: int = 7
    safety_follow_up_days: tuple[int, ...] = (30, 90)
    safety_window_days: int = 7
    survival_interval_weeks: int = 12
    survival_window_days: int = 14


class VisitKind(StrEnum):
    CYCLE = "cycle"
    TUMOR = "tumor"
    SAFETY = "safety"
    SURVIVAL = "survival"


KIND_LABELS = {
    VisitKind.CYCLE: "Treatment cycle",
    VisitKind.TUMOR: "Tumor assessment",
    VisitKind.SAFETY: "Safety follow-up",
    VisitKind.SURVIVAL: "Survival follow-up",
}


_KIND_ORDER = {kind: index for index, kind in enumerate(VisitKind)}  # a day's visits, in order


class VisitStatus(StrEnum):
    EXPECTED = "expected"
    DONE = "done"
    OVERDUE = "overdue"
    MISSED = "missed"


# A guard against runaway series (a randomization date decades ago): 500 visits of a kind.
MAX_VISITS_PER_KIND = 500


@dataclass(frozen=True)
class Visit:
    kind: VisitKind
    number: int  # cycle number, assessment or contact number, days after the last dose
    code: str
    label: str
    target: date
    window_start: date
    window_end: date
    status: VisitStatus
    done_on: date | None = None

    @property
    def in_window(self) -> bool | None:
        if self.done_on is None:
            return None
        return self.window_start <= self.done_on <= self.window_end

    @property
    def days_from_target(self) -> int | None:
        return None if self.done_on is None else (self.done_on - self.target).days


@dataclass(frozen=True)
class Calendar:
    randomization_date: date
    today: date
    visits: tuple[Visit, ...] = field(default_factory=tuple)

    def of_kind(self, kind: VisitKind) -> list[Visit]:
        return [v for v in self.visits if v.kind == kind]

    def with_status(self, status: VisitStatus) -> list[Visit]:
        return [v for v in self.visits if v.status == status]

    @property
    def counts(self) -> dict[str, int]:
        counts = {s.value: 0 for s in VisitStatus}
        for visit in self.visits:
            counts[visit.status] += 1
        return counts

    @property
    def next_expected(self) -> Visit | None:
        expected = self.with_status(VisitStatus.EXPECTED)
        return min(expected, key=lambda v: v.target) if expected else None


# --- target dates -----------------------------------------------------------------------------


def cycle_day1(randomization_date: date, number: int, s: ScheduleSettings) -> date:
    """The nominal day 1 of cycle ``number`` (1-based)."""
    return randomization_date + timedelta(days=s.cycle_days * (number - 1))


def tumor_assessment_week(number: int, s: ScheduleSettings) -> int:
    """The week (from randomization) of tumor assessment ``number`` (1-based)."""
    early = s.tumor_early_phase_weeks // s.tumor_interval_weeks
    if number <= early:
        return s.tumor_interval_weeks * number
    return early * s.tumor_interval_weeks + s.tumor_late_interval_weeks * (number - early)


def _window(target: date, days: int) -> tuple[date, date]:
    return target - timedelta(days=days), target + timedelta(days=days)


@dataclass(frozen=True)
class _Planned:
    kind: VisitKind
    number: int
    code: str
    label: str
    target: date
    window: int

    @property
    def window_end(self) -> date:
        return self.target + timedelta(days=self.window)


def _series(kind, targets, window, *, until, horizon, match, covers):
    """Planned visits of one kind from ``targets`` (an iterable of (number, code, label,
    target)) and the visits done among them (``match(planned) -> {number: date}``): up to the
    next one due, the first whose window ends on or after ``horizon`` that is not done and comes
    after everything done (``covers(visit)``); never past ``until``."""
    planned: list[_Planned] = []
    for count, (number, code, label, target) in enumerate(targets):
        if count >= MAX_VISITS_PER_KIND or (until is not None and target > until):
            break
        visit = _Planned(kind, number, code, label, target, window)
        planned.append(visit)
        if visit.window_end >= horizon and covers(visit) and number not in match(planned):
            break
    return planned, match(planned)


def _dated_series(kind, targets, window, *, until, horizon, dates):
    """``_series`` of a kind whose records are dates without a number (``_match_dates``)."""
    dates = sorted(set(dates))
    return _series(
        kind,
        targets,
        window,
        until=until,
        horizon=horizon,
        match=lambda planned: _match_dates(planned, dates),
        covers=lambda visit: not dates or dates[-1] <= visit.window_end,
    )


def _cycle_targets(randomization_date, s):
    number = 1
    while True:
        yield (
            number,
            f"C{number}",
            f"Cycle {number} day 1",
            cycle_day1(randomization_date, number, s),
        )
        number += 1


def _tumor_targets(randomization_date, s):
    number = 1
    while True:
        week = tumor_assessment_week(number, s)
        yield (
            number,
            f"TA{number}",
            f"Tumor assessment {number} (week {week})",
            randomization_date + timedelta(weeks=week),
        )
        number += 1


def _survival_targets(end_of_treatment, s):
    number = 1
    while True:
        week = s.survival_interval_weeks * number
        yield (
            number,
            f"SURV{number}",
            f"Survival follow-up {number} (week {week} after end of treatment)",
            end_of_treatment + timedelta(weeks=week),
        )
        number += 1


def _nearest(planned: list[_Planned], day: date) -> _Planned:
    return min(planned, key=lambda p: (abs((p.target - day).days), p.target))


def _match_dates(planned: list[_Planned], dates: Iterable[date]) -> dict[int, date]:
    """{visit number: date done}: first the dates inside a visit's window,
    then each date outside every window to the visit with the nearest target, if still undone."""
    matched: dict[int, date] = {}
    outside: list[date] = []
    for done in sorted(set(dates)):
        inside = [p for p in planned if abs((p.target - done).days) <= p.window]
        if inside and (visit := _nearest(inside, done)).number not in matched:
            matched[visit.number] = done
        else:
            outside.append(done)
    for done in outside:
        if planned and (visit := _nearest(planned, done)).number not in matched:
            matched[visit.number] = done
    return matched


def _in_window(planned: list[_Planned], dates: Iterable[date]) -> dict[int, date]:
    """{visit number: the date nearest its target among ``dates`` inside its window}."""
    matched: dict[int, date] = {}
    for p in planned:
        inside = [d for d in set(dates) if abs((p.target - d).days) <= p.window]
        if inside:
            matched[p.number] = min(inside, key=lambda d: (abs((p.target - d).days), d))
    return matched


def _statuses(planned, done, today, *, closed_before=None) -> list[Visit]:
    """Visits with their status; ``closed_before``: undone visits whose target is before this
    date can no longer happen (the series ended) and count as missed."""
    last_done_target = max((p.target for p in planned if p.number in done), default=None)
    visits = []
    for p in planned:
        start, end = _window(p.target, p.window)
        done_on = done.get(p.number)
        if done_on is not None:
            status = VisitStatus.DONE
        elif (last_done_target is not None and p.target < last_done_target) or (
            closed_before is not None and p.target <= closed_before
        ):
            status = VisitStatus.MISSED
        elif end < today:
            status = VisitStatus.OVERDUE
        else:
            status = VisitStatus.EXPECTED
        visits.append(
            Visit(p.kind, p.number, p.code, p.label, p.target, start, end, status, done_on)
        )
    return visits


def _earliest(*dates: date | None) -> date | None:
    known = [d for d in dates if d is not None]
    return min(known) if known else None


def calendar(
    *,
    randomization_date: date,
    today: date,
    settings: ScheduleSettings | None = None,
    cycles_done: Mapping[int, date] | None = None,
    tumor_assessments_done: Iterable[date] = (),
    end_of_treatment: date | None = None,
    last_dose: date | None = None,
    safety_contacts: Iterable[date] = (),
    survival_contacts_done: Iterable[date] = (),
    tumor_assessments_until: date | None = None,
    follow_up_until: date | None = None,
    kinds: Iterable[VisitKind] | None = None,
) -> Calendar:
    """The subject's calendar on ``today`` (the rules: README, "The visit calendar").

    ``cycles_done``: cycle number -> day 1 date recorded; ``tumor_assessments_done``,
    ``survival_contacts_done``: the dates of the assessments and of the follow-up contacts;
    ``safety_contacts``: other dates on which the subject's safety was followed (adverse event
    onset and end dates), for the safety follow-up. ``kinds``: only the visits of these kinds
    (default: all; a kind's visits do not depend on the others').
    """
    s = settings or ScheduleSettings()
    kinds = frozenset(VisitKind if kinds is None else kinds)
    cycles_done = dict(cycles_done or {})
    visits: list[Visit] = []
    if VisitKind.CYCLE in kinds:
        visits += _cycles(
            randomization_date, today, s, cycles_done, end_of_treatment, follow_up_until
        )
    if VisitKind.TUMOR in kinds:
        visits += _tumor_assessments(
            randomization_date,
            today,
            s,
            tumor_assessments_done,
            tumor_assessments_until,
            follow_up_until,
        )
    if end_of_treatment is not None:
        survival_dates = sorted(set(survival_contacts_done))
        if VisitKind.SAFETY in kinds and last_dose is not None:
            visits += _safety_follow_up(
                today, s, last_dose, [*survival_dates, *safety_contacts], follow_up_until
            )
        if VisitKind.SURVIVAL in kinds:
            survival, survival_done = _dated_series(
                VisitKind.SURVIVAL,
                _survival_targets(end_of_treatment, s),
                s.survival_window_days,
                until=follow_up_until,
                horizon=today,
                dates=survival_dates,
            )
            visits += _statuses(survival, survival_done, today, closed_before=follow_up_until)

    visits.sort(key=lambda v: (v.target, _KIND_ORDER[v.kind], v.number))
    return Calendar(randomization_date, today, tuple(visits))


def _cycles(randomization_date, today, s, cycles_done, end_of_treatment, follow_up_until):
    """Cycles: none after the end of treatment (or of follow-up), except those done."""
    cycles_end = _earliest(end_of_treatment, follow_up_until)
    last_cycle_done = max(cycles_done, default=0)
    cycles_until = cycles_end
    if cycles_end is not None and last_cycle_done:
        cycles_until = max(cycles_end, cycle_day1(randomization_date, last_cycle_done, s))
    cycles, _ = _series(
        VisitKind.CYCLE,
        _cycle_targets(randomization_date, s),
        s.cycle_window_days,
        until=cycles_until,
        horizon=today if cycles_end is None else date.max,
        match=lambda planned: cycles_done,
        covers=lambda visit: visit.number > last_cycle_done,
    )
    return _statuses(cycles, cycles_done, today, closed_before=cycles_end)


def _tumor_assessments(randomization_date, today, s, done, until, follow_up_until):
    """Tumor assessments: up to the progression (``until``) or the end of follow-up. The visit
    the scan that showed the progression fulfilled may have its target a few days after it."""
    tumor_until = follow_up_until
    if until is not None:
        progression_visit = until + timedelta(days=s.tumor_window_days)
        tumor_until = _earliest(progression_visit, follow_up_until)
    scans_end = _earliest(until, follow_up_until)
    # A scan after the progression (a confirmation) marks no scheduled visit.
    tumor_dates = [d for d in done if scans_end is None or d <= scans_end]
    tumor, tumor_done = _dated_series(
        VisitKind.TUMOR,
        _tumor_targets(randomization_date, s),
        s.tumor_window_days,
        until=tumor_until,
        horizon=today,
        dates=tumor_dates,
    )
    return _statuses(tumor, tumor_done, today, closed_before=tumor_until)


def _safety_follow_up(today, s, last_dose, followed, follow_up_until):
    """Safety follow-up visits after the last dose, done by a date of follow-up in the window."""
    safety = [
        _Planned(
            VisitKind.SAFETY,
            days,
            f"SFU{days}",
            f"Safety follow-up, {days} days after the last dose",
            last_dose + timedelta(days=days),
            s.safety_window_days,
        )
        for days in s.safety_follow_up_days
    ]
    if follow_up_until is not None:
        safety = [p for p in safety if p.target <= follow_up_until]
    return _statuses(safety, _in_window(safety, followed), today, closed_before=follow_up_until)
