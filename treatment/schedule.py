"""A subject's visit calendar, computed from the randomization date (pure, deterministic).

No database access: ``calendar(...)`` takes dates and returns the visits; the selectors read the
records and call it, the pages show it, and edit check TRT-004 uses the same rule for the cycles
in SQL. The numbers come from ``ScheduleSettings`` (defaults and their basis in
``treatment.settings``).

The visits (target dates count from the randomization date, day 0; "day 1" of cycle 1 is the
randomization date itself):

* **Cycles** ``C<N>``: cycle N day 1 = randomization + cycle_days × (N − 1), window
  ± cycle_window_days. The schedule is nominal: a delayed cycle does not move the later targets
  (the protocol's "every 3 weeks" counts from randomization), so a delay shows as a day 1 out of
  its window. Cycles are listed up to the later of the last cycle done and the next one due; once
  treatment has ended, none after the end of treatment.
* **Tumor assessments** ``TA<K>``: every tumor_interval_weeks (6) from randomization up to
  tumor_early_phase_weeks (54: weeks 6, 12, …, 54), then every tumor_late_interval_weeks (9:
  weeks 63, 72, …), window ± tumor_window_days. Listed up to the next one due, and never after
  ``tumor_assessments_until`` (progression or end of study: no more scheduled scans).
* **Safety follow-up** ``SFU<D>``: D days after the last dose (30 and 90), once treatment has
  ended and the last dose date is known, window ± safety_window_days.
* **Survival follow-up** ``SURV<K>``: every survival_interval_weeks (12) after the end of
  treatment, window ± survival_window_days, up to the next one due (none after
  ``follow_up_until``: death or end of study).

Done visits: cycles are matched by number; tumor assessments and survival contacts are dates
without a number, each matched to the undone visit of its kind whose target is nearest (the
earlier on a tie), in date order.

Status of a visit on ``today``:

* ``done``: a date is recorded (``done_on``; ``in_window`` tells whether it fell in the window);
* ``missed``: not done, and a later visit of the same kind was done (or the series ended: a cycle
  before the end of treatment, a scan before ``tumor_assessments_until``);
* ``overdue``: not done, not missed, and the window ended before today;
* ``expected``: not done and the window has not ended.
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


def _series(kind, targets, window, *, until, horizon, keep_through):
    """Planned visits of one kind from ``targets`` (an iterable of (number, code, label,
    target)): stop after the first whose window ends on or after ``horizon`` (the next one due),
    but go on through ``keep_through`` (the last one done); never past ``until``."""
    planned = []
    for count, (number, code, label, target) in enumerate(targets):
        if count >= MAX_VISITS_PER_KIND or (until is not None and target > until):
            break
        visit = _Planned(kind, number, code, label, target, window)
        planned.append(visit)
        beyond_done = keep_through is None or number >= keep_through
        if visit.window_end >= horizon and beyond_done:
            break
    return planned


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


def _match_dates(planned: list[_Planned], dates: Iterable[date]) -> dict[int, date]:
    """Each date to the not yet matched visit with the nearest target (earlier on a tie)."""
    matched: dict[int, date] = {}
    for done in sorted(set(dates)):
        free = [p for p in planned if p.number not in matched]
        if not free:
            break
        nearest = min(free, key=lambda p: (abs((p.target - done).days), p.target))
        matched[nearest.number] = done
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


def calendar(
    *,
    randomization_date: date,
    today: date,
    settings: ScheduleSettings | None = None,
    cycles_done: Mapping[int, date] | None = None,
    tumor_assessments_done: Iterable[date] = (),
    end_of_treatment: date | None = None,
    last_dose: date | None = None,
    safety_follow_ups_done: Mapping[int, date] | None = None,
    survival_contacts_done: Iterable[date] = (),
    tumor_assessments_until: date | None = None,
    follow_up_until: date | None = None,
) -> Calendar:
    """The subject's calendar on ``today`` (see the module docstring for the rules).

    ``cycles_done``: cycle number -> day 1 date recorded; ``safety_follow_ups_done``: days after
    the last dose (30, 90) -> visit date; the other ``*_done`` are dates.
    """
    s = settings or ScheduleSettings()
    cycles_done = dict(cycles_done or {})
    visits: list[Visit] = []

    # Cycles: none after the end of treatment.
    cycles = _series(
        VisitKind.CYCLE,
        _cycle_targets(randomization_date, s),
        s.cycle_window_days,
        until=end_of_treatment,
        horizon=today if end_of_treatment is None else date.max,
        keep_through=max(cycles_done, default=None),
    )
    if end_of_treatment is not None:
        # The series is closed: list the cycles up to the end of treatment.
        cycles = [c for c in cycles if c.target <= end_of_treatment]
    visits += _statuses(cycles, cycles_done, today, closed_before=end_of_treatment)

    # Tumor assessments.
    tumor_dates = sorted(set(tumor_assessments_done))
    tumor_until = tumor_assessments_until or follow_up_until
    tumor = _series(
        VisitKind.TUMOR,
        _tumor_targets(randomization_date, s),
        s.tumor_window_days,
        until=tumor_until,
        horizon=today,
        keep_through=None,
    )
    # Enough planned visits to hold every date done (a scan after the horizon, early).
    while tumor_dates and len(tumor) < MAX_VISITS_PER_KIND and tumor[-1].target < tumor_dates[-1]:
        number = len(tumor) + 1
        week = tumor_assessment_week(number, s)
        target = randomization_date + timedelta(weeks=week)
        if tumor_until is not None and target > tumor_until:
            break
        tumor.append(
            _Planned(
                VisitKind.TUMOR,
                number,
                f"TA{number}",
                f"Tumor assessment {number} (week {week})",
                target,
                s.tumor_window_days,
            )
        )
    visits += _statuses(
        tumor, _match_dates(tumor, tumor_dates), today, closed_before=tumor_assessments_until
    )

    if end_of_treatment is not None:
        if last_dose is not None:
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
            visits += _statuses(safety, dict(safety_follow_ups_done or {}), today)
        survival_dates = sorted(set(survival_contacts_done))
        survival = _series(
            VisitKind.SURVIVAL,
            _survival_targets(end_of_treatment, s),
            s.survival_window_days,
            until=follow_up_until,
            horizon=max([today, *survival_dates]),
            keep_through=None,
        )
        visits += _statuses(survival, _match_dates(survival, survival_dates), today)

    visits.sort(key=lambda v: (v.target, list(VisitKind).index(v.kind), v.number))
    return Calendar(randomization_date, today, tuple(visits))
