"""PFS and OS from plain dates (survival.endpoints), on small hand-built courses, and the
Kaplan-Meier figures against hand computation and lifelines itself, and the endpoints report's
SQL (PFS and OS counted per arm and time) against these rules on generated courses."""

import random
from collections import Counter
from datetime import date, timedelta

import pytest

from survival import endpoints as ep
from survival.endpoints import AssessmentSchedule, Course

R = date(2024, 1, 1)  # randomization of every course


def day(n: int) -> date:
    """Study day ``n`` (day 1 = the day of randomization)."""
    return R + timedelta(days=n - 1)


def test_progression_is_a_pfs_event_and_the_subject_is_censored_alive_for_os():
    course = Course(
        "101-0001",
        R,
        "A",
        progression=date(2024, 3, 10),
        last_assessment=date(2024, 3, 10),
        last_known_alive=date(2024, 4, 2),
    )
    pfs = ep.pfs(course)
    assert (pfs.end, pfs.event, pfs.censored, pfs.description) == (
        date(2024, 3, 10),
        True,
        0,
        ep.PROGRESSION,
    )
    assert pfs.days == 70  # 31 (January) + 29 (February 2024) + 10
    assert pfs.months == pytest.approx(70 / 30.4375)
    os = ep.os_(course)
    assert (os.end, os.event, os.censored, os.days) == (date(2024, 4, 2), False, 1, 93)
    assert os.description == ep.CENSORED_ALIVE


def test_no_progression_censors_pfs_at_the_last_adequate_assessment():
    course = Course(
        "101-0002", R, "B", last_assessment=date(2024, 5, 1), last_known_alive=date(2024, 6, 1)
    )
    pfs = ep.pfs(course)
    assert (pfs.end, pfs.event, pfs.days) == (date(2024, 5, 1), False, 122)
    assert pfs.description == ep.CENSORED_LAST_ASSESSMENT


def test_death_without_progression_is_a_pfs_and_an_os_event():
    course = Course("101-0003", R, "A", last_assessment=day(43), death=day(61))
    pfs, os = ep.pfs(course), ep.os_(course)
    assert (pfs.end, pfs.event, pfs.description, pfs.days) == (day(61), True, ep.DEATH, 61)
    assert (os.end, os.event, os.description, os.days) == (day(61), True, ep.DEATH, 61)


def test_death_after_two_missed_assessments_censors_pfs_at_the_last_adequate_one():
    # Last scan on day 43 (week 6); the next are due on days 85 and 127 (+7 days of window):
    # a death on day 135 comes after two missed assessments.
    course = Course("101-0004", R, "A", last_assessment=day(43), death=day(135))
    pfs = ep.pfs(course)
    assert (pfs.end, pfs.event, pfs.days) == (day(43), False, 43)
    assert pfs.description == ep.CENSORED_MISSED_ASSESSMENTS
    # ... but OS counts the death.
    assert ep.os_(course).event is True
    # The last day still within the second assessment's window is an event.
    assert ep.pfs(Course("x", R, death=day(134), last_assessment=day(43))).event is True


def test_the_missed_assessment_rule_follows_the_9_week_schedule_after_week_54():
    schedule = AssessmentSchedule()
    # Assessed on day 379 (study day of week 54): next due days 441 and 504 after randomization.
    assert schedule.due_after(R, day(379), 2) == R + timedelta(days=504 + 7)
    assert ep.pfs(Course("x", R, last_assessment=day(379), progression=day(512))).event is True
    assert ep.pfs(Course("x", R, last_assessment=day(379), progression=day(513))).event is False


def test_the_missed_assessment_rule_can_be_switched_off():
    course = Course("x", R, last_assessment=day(43), death=day(300))
    assert ep.pfs(course, schedule=AssessmentSchedule(missed=None)).event is True


def test_no_post_baseline_assessment_censors_pfs_at_randomization():
    course = Course("101-0005", R, last_assessment=R - timedelta(days=10))  # baseline only
    pfs = ep.pfs(course)
    assert (pfs.end, pfs.event, pfs.days, pfs.description) == (
        R,
        False,
        1,
        ep.CENSORED_NO_ASSESSMENT,
    )
    os = ep.os_(course)
    assert (os.end, os.event, os.description) == (R, False, ep.CENSORED_NOTHING_AFTER_RANDOMIZATION)


def test_progression_and_death_the_same_day_is_a_progression_and_the_earlier_wins():
    same = Course("x", R, progression=day(50), death=day(50), last_assessment=day(50))
    assert ep.pfs(same).description == ep.PROGRESSION
    earlier_death = Course("x", R, progression=day(60), death=day(50), last_assessment=day(43))
    assert (ep.pfs(earlier_death).end, ep.pfs(earlier_death).description) == (day(50), ep.DEATH)


def test_the_data_cutoff_hides_later_events_and_caps_censoring():
    course = Course(
        "x",
        R,
        progression=day(200),
        last_assessment=day(200),
        death=day(260),
        last_known_alive=day(250),
    )
    cutoff = day(150)
    pfs, os = ep.pfs(course, cutoff=cutoff), ep.os_(course, cutoff=cutoff)
    assert (pfs.end, pfs.event) == (cutoff, False)
    assert (os.end, os.event, os.description) == (cutoff, False, ep.CENSORED_ALIVE)
    # A death after the cut-off, with nothing else known: alive on the cut-off.
    assert ep.os_(Course("y", R, death=day(260)), cutoff=cutoff).end == cutoff
    # A cut-off after everything changes nothing.
    assert ep.pfs(course, cutoff=day(400)) == ep.pfs(course)


def test_os_is_censored_at_the_latest_date_the_subject_was_seen_alive():
    # A tumor assessment after the last follow-up contact: the subject was alive then.
    course = Course("x", R, last_assessment=day(90), last_known_alive=day(80))
    assert ep.os_(course).end == day(90)


def test_endpoints_gives_pfs_then_os_for_each_course():
    courses = [Course("a", R, "A", death=day(30)), Course("b", R, "B")]
    rows = ep.endpoints(courses)
    assert [(r.subject, r.parameter) for r in rows] == [
        ("a", "PFS"),
        ("b", "PFS"),
        ("a", "OS"),
        ("b", "OS"),
    ]


def test_deterministic():
    course = Course("x", R, progression=day(100), last_assessment=day(100), death=day(200))
    assert ep.endpoints([course]) == ep.endpoints([course])


# --- Kaplan-Meier --------------------------------------------------------------------------------

# Hand computation. Times 2, 3, 3+, 5, 7+, 8, 9+ (+ censored), 7 subjects:
#   t=2: 7 at risk, 1 event -> S = 6/7
#   t=3: 6 at risk, 1 event (and 1 censored) -> S = 6/7 * 5/6 = 5/7
#   t=5: 4 at risk, 1 event -> S = 5/7 * 3/4 = 15/28
#   t=8: 2 at risk, 1 event -> S = 15/28 * 1/2 = 15/56 (the first value <= 0.5: median 8)
TIMES = [2, 3, 3, 5, 7, 8, 9]
EVENTS = [True, True, False, True, False, True, False]


def test_kaplan_meier_matches_the_hand_computation():
    km = ep.kaplan_meier("A", TIMES, EVENTS, at_times=[0, 3, 6, 9, 10])
    assert km.subjects == 7 and km.events == 4
    assert km.survival_at(0) == 1.0
    assert km.survival_at(1.9) == 1.0
    assert km.survival_at(2) == pytest.approx(6 / 7)
    assert km.survival_at(4) == pytest.approx(5 / 7)
    assert km.survival_at(5) == pytest.approx(15 / 28)
    assert km.survival_at(8.5) == pytest.approx(15 / 56)
    assert km.median == 8
    assert km.at_risk == ((0, 7), (3, 6), (6, 3), (9, 1), (10, 0))
    # Censored subjects are marked on the curve at their time.
    assert km.censor_marks == (
        (3.0, pytest.approx(5 / 7)),
        (7.0, pytest.approx(15 / 28)),
        (9.0, pytest.approx(15 / 56)),
    )


def test_kaplan_meier_figures_match_lifelines_on_the_same_data():
    from lifelines import KaplanMeierFitter

    courses = [
        Course("a1", R, "A", progression=day(70), last_assessment=day(70)),
        Course("a2", R, "A", last_assessment=day(122)),
        Course("a3", R, "A", last_assessment=day(43), death=day(61)),
        Course("a4", R, "A", last_assessment=day(43), death=day(135)),
        Course("a5", R, "A", progression=day(250), last_assessment=day(250)),
        Course("a6", R, "A", progression=day(127), last_assessment=day(127)),
    ]
    rows = [ep.pfs(c) for c in courses]
    km = ep.kaplan_meier("A", [r.days for r in rows], [r.event for r in rows])
    fitter = KaplanMeierFitter().fit([r.days for r in rows], [r.event for r in rows])
    for t in (0, 42, 43, 61, 70, 100, 122, 127, 200, 250, 300):
        assert km.survival_at(t) == pytest.approx(float(fitter.predict(t)))
    assert km.median == fitter.median_survival_time_
    assert km.events == int(fitter.event_table["observed"].sum())


def test_median_not_reached_and_empty_group():
    km = ep.kaplan_meier("B", [10, 20, 30], [True, False, False])
    assert km.median is None  # S never falls to 0.5
    assert km.median_ci[1] is None
    empty = ep.kaplan_meier("B", [], [], at_times=[0])
    assert (empty.subjects, empty.median, empty.at_risk) == (0, None, ((0, 0),))
    with pytest.raises(ValueError):
        ep.kaplan_meier("B", [1], [])


def test_kaplan_meier_from_counts_is_the_fit_of_one_row_per_subject():
    """The report fits each curve from its distinct times with their counts: the same curve,
    median, confidence interval, numbers at risk and life table as one row per subject."""
    rng = random.Random(7)
    rows = [(rng.randint(1, 60), rng.random() < 0.6) for _ in range(400)]
    counted = Counter(rows)
    times = sorted(counted)
    at = [0, 12, 24, 36, 48, 60]
    one_each = ep.kaplan_meier("A", [d for d, _ in rows], [e for _, e in rows], at_times=at)
    grouped = ep.kaplan_meier(
        "A",
        [d for d, _ in times],
        [e for _, e in times],
        counts=[counted[t] for t in times],
        at_times=at,
    )
    assert grouped == one_each
    assert len(grouped.table) == len({d for d, _ in rows})
    first = grouped.table[0]
    assert (first.at_risk, first.events + first.censored) == (
        400,
        sum(n for (d, _), n in counted.items() if d == first.time),
    )
    with pytest.raises(ValueError):
        ep.kaplan_meier("A", [1, 2], [True, False], counts=[1])
    with pytest.raises(ValueError):
        ep.kaplan_meier("A", [1], [True], counts=[0])


def _random_course(rng: random.Random, i: int) -> Course:
    """A course with any mix of dates, some before randomization or after the cut-off."""

    def maybe(low, high):
        return day(rng.randint(low, high)) if rng.random() < 0.6 else None

    return Course(
        f"s{i}",
        R + timedelta(days=rng.randint(-3, 40)),
        rng.choice("AB"),
        progression=maybe(-10, 900),
        last_assessment=maybe(-20, 900),
        death=maybe(1, 1000),
        last_known_alive=maybe(1, 1000),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "schedule,cutoff",
    [
        (ep.AssessmentSchedule(), day(700)),
        (ep.AssessmentSchedule(), day(20)),
        (ep.AssessmentSchedule(missed=None), day(1000)),
        (ep.AssessmentSchedule(first_interval_days=56, switch_day=400, missed=1), day(600)),
    ],
)
def test_the_reports_sql_counts_the_same_pfs_and_os_as_the_python_rules(schedule, cutoff):
    """``survival.selectors`` counts PFS and OS per arm and time in SQL (the endpoints report):
    on generated courses it finds what ``pfs`` and ``os_`` find, subject by subject summed."""
    from django.db import connection

    from survival import selectors

    if connection.vendor != "postgresql":
        pytest.skip("The report's SQL is PostgreSQL's (SQLite counts in Python).")
    rng = random.Random(22)
    courses = [_random_course(rng, i) for i in range(600)]
    row = "(%s::text, %s::date, %s::date, %s::date, %s::date, %s::date)"
    sql = "SELECT * FROM (VALUES " + ", ".join([row] * len(courses)) + ") v"
    params = [
        value
        for c in courses
        for value in (
            c.arm,
            c.randomized,
            c.progression,
            c.last_assessment,
            c.death,
            c.last_known_alive,
        )
    ]
    counted = selectors.count_time_to_event(sql, params, cutoff=cutoff, schedule=schedule)
    expected = Counter(
        (r.parameter, r.arm, r.days, r.event)
        for r in ep.endpoints(courses, cutoff=cutoff, schedule=schedule)
    )
    assert {(c.parameter, c.arm, c.days, c.event): c.subjects for c in counted} == expected
    # The generated courses reach every branch: events, censoring, missed assessments.
    pfs = [ep.pfs(c, cutoff=cutoff, schedule=schedule) for c in courses]
    assert {r.description for r in pfs} >= {ep.CENSORED_NO_ASSESSMENT, ep.DEATH, ep.PROGRESSION}
    if schedule.missed and cutoff > day(100):
        assert ep.CENSORED_MISSED_ASSESSMENTS in {r.description for r in pfs}
