"""The visit calendar (treatment.schedule): pure, computed from the randomization date."""

from datetime import date, timedelta

import pytest

from treatment.schedule import (
    ScheduleSettings,
    VisitKind,
    VisitStatus,
    calendar,
    cycle_day1,
    tumor_assessment_week,
)

RAND = date(2024, 1, 1)
S = ScheduleSettings()


def day(n: int) -> date:
    return RAND + timedelta(days=n)


def by_code(cal):
    return {v.code: v for v in cal.visits}


def test_cycle_day_1_every_21_days_from_randomization_with_a_3_day_window():
    assert cycle_day1(RAND, 1, S) == RAND
    assert cycle_day1(RAND, 4, S) == day(63)
    cal = calendar(randomization_date=RAND, today=day(0))
    c1 = by_code(cal)["C1"]
    assert (c1.window_start, c1.target, c1.window_end) == (day(-3), day(0), day(3))
    assert c1.status == VisitStatus.EXPECTED


def test_tumor_assessments_every_6_weeks_to_week_54_then_every_9_weeks():
    weeks = [tumor_assessment_week(n, S) for n in range(1, 13)]
    assert weeks == [6, 12, 18, 24, 30, 36, 42, 48, 54, 63, 72, 81]
    cal = calendar(randomization_date=RAND, today=day(7 * 80))
    tumor = cal.of_kind(VisitKind.TUMOR)
    assert [v.target for v in tumor[:11]] == [RAND + timedelta(weeks=w) for w in weeks[:11]]
    assert tumor[0].window_start == day(42 - 7) and tumor[0].window_end == day(42 + 7)


def test_done_overdue_missed_and_expected():
    # Cycles 1 and 3 done; cycle 2 is missed (a later cycle was done); cycle 4 (day 63) is
    # overdue on day 70; cycle 5 (day 84) is expected.
    cal = calendar(
        randomization_date=RAND,
        today=day(70),
        cycles_done={1: day(0), 3: day(46)},
    )
    visits = by_code(cal)
    assert visits["C1"].status == VisitStatus.DONE and visits["C1"].in_window
    assert visits["C3"].status == VisitStatus.DONE
    assert visits["C3"].in_window is False and visits["C3"].days_from_target == 4
    assert visits["C2"].status == VisitStatus.MISSED
    assert visits["C4"].status == VisitStatus.OVERDUE
    assert visits["C5"].status == VisitStatus.EXPECTED
    assert "C6" not in visits  # only up to the next one due
    assert cal.next_expected.code in {"C5", "TA2"}


def test_overdue_only_once_the_window_has_passed():
    on_last_window_day = calendar(randomization_date=RAND, today=day(24), cycles_done={1: RAND})
    assert by_code(on_last_window_day)["C2"].status == VisitStatus.EXPECTED
    next_day = calendar(randomization_date=RAND, today=day(25), cycles_done={1: RAND})
    assert by_code(next_day)["C2"].status == VisitStatus.OVERDUE


def test_tumor_assessment_dates_match_the_nearest_scheduled_visit():
    cal = calendar(
        randomization_date=RAND,
        today=day(100),
        tumor_assessments_done=[day(40), day(90)],  # week 6 (day 42) early; week 12 (84) late
    )
    visits = by_code(cal)
    assert visits["TA1"].done_on == day(40) and visits["TA1"].in_window
    assert visits["TA2"].done_on == day(90) and visits["TA2"].in_window
    assert visits["TA3"].status == VisitStatus.EXPECTED  # week 18 = day 126


def test_after_end_of_treatment_no_more_cycles_then_safety_and_survival_follow_up():
    end = day(60)
    last_dose = day(42)
    cal = calendar(
        randomization_date=RAND,
        today=day(200),
        cycles_done={1: day(0), 2: day(21), 3: day(42)},
        end_of_treatment=end,
        last_dose=last_dose,
        safety_contacts=[last_dose + timedelta(days=31)],
        survival_contacts_done=[end + timedelta(weeks=12)],
    )
    visits = by_code(cal)
    assert not [v for v in cal.of_kind(VisitKind.CYCLE) if v.number > 3]
    assert visits["SFU30"].status == VisitStatus.DONE
    assert visits["SFU90"].target == last_dose + timedelta(days=90)
    assert visits["SFU90"].status == VisitStatus.OVERDUE  # day 132 + 7 < day 200
    assert visits["SURV1"].status == VisitStatus.DONE
    assert visits["SURV2"].target == end + timedelta(weeks=24)
    assert visits["SURV2"].status == VisitStatus.EXPECTED  # day 228


def test_cycles_not_given_before_the_end_of_treatment_are_missed_not_overdue():
    cal = calendar(
        randomization_date=RAND,
        today=day(100),
        cycles_done={1: day(0)},
        end_of_treatment=day(30),
    )
    visits = by_code(cal)
    assert visits["C2"].status == VisitStatus.MISSED
    assert "C3" not in visits
    assert not cal.with_status(VisitStatus.OVERDUE) or all(
        v.kind != VisitKind.CYCLE for v in cal.with_status(VisitStatus.OVERDUE)
    )


def test_no_tumor_assessment_scheduled_after_progression():
    cal = calendar(
        randomization_date=RAND,
        today=day(300),
        tumor_assessments_done=[day(42), day(84)],
        tumor_assessments_until=day(84),
    )
    assert [v.code for v in cal.of_kind(VisitKind.TUMOR)] == ["TA1", "TA2"]


def test_settings_change_the_schedule():
    weekly = ScheduleSettings(cycle_days=14, cycle_window_days=1)
    cal = calendar(randomization_date=RAND, today=day(15), settings=weekly, cycles_done={1: RAND})
    c2 = by_code(cal)["C2"]
    assert (c2.target, c2.window_end, c2.status) == (day(14), day(15), VisitStatus.EXPECTED)


def test_deterministic_and_counts():
    kwargs = {"randomization_date": RAND, "today": day(70), "cycles_done": {1: day(0)}}
    first, second = calendar(**kwargs), calendar(**kwargs)
    assert first == second
    assert sum(first.counts.values()) == len(first.visits)


@pytest.mark.django_db(databases=[])
def test_django_settings_override_the_defaults(settings):
    from treatment.settings import schedule_settings

    settings.TREATMENT_SETTINGS = {"cycle_window_days": 2}
    assert schedule_settings().cycle_window_days == 2
    assert schedule_settings().cycle_days == 21
    settings.TREATMENT_SETTINGS = {"cycle_lenght": 2}
    with pytest.raises(ValueError, match="cycle_lenght"):
        schedule_settings()


# --- done, by date: the window first, then the nearest free visit --------------------------------


def test_a_scan_in_its_window_marks_the_visit_and_an_extra_scan_marks_nothing():
    # TA2 (day 84) showed a response; a confirmation scan on day 112 is outside every window
    # (TA3: 119 to 133): an extra, not TA3 done early, and TA3's own scan on day 126 marks TA3.
    cal = calendar(
        randomization_date=RAND,
        today=day(140),
        tumor_assessments_done=[day(42), day(84), day(112), day(126)],
    )
    visits = by_code(cal)
    assert [visits[c].done_on for c in ("TA1", "TA2", "TA3")] == [day(42), day(84), day(126)]
    assert all(visits[c].in_window for c in ("TA1", "TA2", "TA3"))
    assert visits["TA4"].status == VisitStatus.EXPECTED  # day 168
    assert [v for v in cal.with_status(VisitStatus.OVERDUE) if v.kind == VisitKind.TUMOR] == []


def test_a_late_scan_outside_the_window_marks_its_undone_visit_out_of_window():
    cal = calendar(
        randomization_date=RAND, today=day(100), tumor_assessments_done=[day(42), day(95)]
    )
    ta2 = by_code(cal)["TA2"]  # day 84, window to day 91
    assert ta2.status == VisitStatus.DONE and ta2.in_window is False
    assert ta2.days_from_target == 11


def test_a_visit_done_early_lists_the_next_one_due():
    cal = calendar(
        randomization_date=RAND,
        today=day(82),
        cycles_done={1: day(0), 2: day(21), 3: day(42), 4: day(63)},
        tumor_assessments_done=[day(42), day(80)],  # TA2 (day 84) done early, in its window
    )
    visits = by_code(cal)
    assert visits["TA2"].status == VisitStatus.DONE
    assert visits["TA3"].status == VisitStatus.EXPECTED
    assert cal.with_status(VisitStatus.OVERDUE) == []


# --- after the end of treatment, the progression, the death --------------------------------------


def test_after_the_end_of_treatment_no_cycle_is_overdue_and_the_follow_up_is_expected():
    last_dose = day(63)
    cal = calendar(
        randomization_date=RAND,
        today=day(80),
        cycles_done={1: day(0), 2: day(21), 3: day(42), 4: day(63)},
        tumor_assessments_done=[day(42)],
        end_of_treatment=last_dose,
        last_dose=last_dose,
    )
    visits = by_code(cal)
    assert [v.code for v in cal.of_kind(VisitKind.CYCLE)] == ["C1", "C2", "C3", "C4"]
    assert cal.with_status(VisitStatus.OVERDUE) == []
    assert (visits["SFU30"].target, visits["SFU30"].status) == (day(93), VisitStatus.EXPECTED)
    assert (visits["SFU90"].target, visits["SFU90"].status) == (day(153), VisitStatus.EXPECTED)
    assert (visits["SURV1"].target, visits["SURV1"].status) == (day(63 + 84), VisitStatus.EXPECTED)
    assert visits["TA2"].status == VisitStatus.EXPECTED  # the scans go on until progression


def test_a_cycle_given_early_as_the_last_dose_stays_listed():
    # Cycle 4 (day 63) given on day 61 and the last dose: the end of treatment is before the
    # nominal day 1, the cycle is still shown done.
    cal = calendar(
        randomization_date=RAND,
        today=day(70),
        cycles_done={1: day(0), 2: day(21), 3: day(42), 4: day(61)},
        end_of_treatment=day(61),
        last_dose=day(61),
    )
    assert by_code(cal)["C4"].status == VisitStatus.DONE
    assert "C5" not in by_code(cal)


def test_the_safety_follow_up_is_done_by_a_contact_or_an_adverse_event_in_its_window():
    last_dose = day(63)
    kwargs = {
        "randomization_date": RAND,
        "today": last_dose + timedelta(days=120),
        "cycles_done": {1: day(0), 2: day(21), 3: day(42), 4: day(63)},
        "end_of_treatment": last_dose,
        "last_dose": last_dose,
    }
    nothing = by_code(calendar(**kwargs))
    assert nothing["SFU30"].status == nothing["SFU90"].status == VisitStatus.OVERDUE
    # An AE dated 33 days after the last dose (window 23 to 37), a contact on day 84 after it
    # (SURV1, inside SFU90's window 83 to 97): both done; a date outside the windows marks none.
    done = by_code(
        calendar(
            **kwargs,
            safety_contacts=[last_dose + timedelta(days=33), last_dose + timedelta(days=50)],
            survival_contacts_done=[last_dose + timedelta(days=84)],
        )
    )
    assert done["SFU30"].done_on == last_dose + timedelta(days=33)
    assert done["SFU90"].done_on == last_dose + timedelta(days=84)
    assert done["SURV1"].status == VisitStatus.DONE
    outside = by_code(calendar(**kwargs, safety_contacts=[last_dose + timedelta(days=50)]))
    assert outside["SFU30"].status == VisitStatus.OVERDUE


def test_after_the_progression_no_scan_is_scheduled_and_a_later_scan_marks_nothing():
    # The progression was seen on day 80, early in TA2's window (day 84 ± 7).
    cal = calendar(
        randomization_date=RAND,
        today=day(200),
        tumor_assessments_done=[day(42), day(80), day(110)],
        tumor_assessments_until=day(80),
    )
    tumor = cal.of_kind(VisitKind.TUMOR)
    assert [(v.code, v.done_on) for v in tumor] == [("TA1", day(42)), ("TA2", day(80))]


def test_after_a_death_nothing_is_expected():
    last_dose, death = day(63), day(120)
    cal = calendar(
        randomization_date=RAND,
        today=day(300),
        cycles_done={1: day(0), 2: day(21), 3: day(42), 4: day(63)},
        tumor_assessments_done=[day(42), day(84)],
        end_of_treatment=last_dose,
        last_dose=last_dose,
        follow_up_until=death,
    )
    assert cal.with_status(VisitStatus.EXPECTED) == []
    assert cal.with_status(VisitStatus.OVERDUE) == []
    assert all(v.target <= death for v in cal.visits)
    visits = by_code(cal)
    # Before the death: the 30-day safety follow-up (day 93) was not done: missed.
    assert visits["SFU30"].status == VisitStatus.MISSED
    assert "SFU90" not in visits and "SURV1" not in visits  # days 153 and 147: after the death
    assert visits["TA2"].status == VisitStatus.DONE and "TA3" not in visits  # TA3: day 126


def test_a_death_without_end_of_treatment_ends_the_cycles():
    cal = calendar(
        randomization_date=RAND,
        today=day(100),
        cycles_done={1: day(0), 2: day(21)},
        follow_up_until=day(30),
    )
    assert [v.code for v in cal.of_kind(VisitKind.CYCLE)] == ["C1", "C2"]
    assert cal.with_status(VisitStatus.EXPECTED) == cal.with_status(VisitStatus.OVERDUE) == []
