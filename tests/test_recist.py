"""RECIST v1.1 derivation (efficacy.recist): pure functions, no database."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from efficacy.recist import (
    Assessment,
    NonTargetStatus,
    Response,
    TargetLesion,
    best_overall_response,
    derive,
    first_progression,
    is_progression,
    non_target_response,
    overall_response,
    target_response,
)

CR, PR, SD, NN, PD, NE = (
    Response.CR,
    Response.PR,
    Response.SD,
    Response.NON_CR_NON_PD,
    Response.PD,
    Response.NE,
)
START = date(2024, 1, 1)


def day(n: int) -> date:
    return START + timedelta(days=n)


# RECIST 1.1 Table 1: target x non-target x new lesions -> overall (every row; "non-PD" and
# "any" expanded to each value they stand for).
TABLE_1 = [
    (CR, CR, False, CR),
    (CR, NN, False, PR),
    (CR, NE, False, PR),
    (PR, NN, False, PR),
    (PR, NE, False, PR),
    (PR, CR, False, PR),
    (SD, NN, False, SD),
    (SD, NE, False, SD),
    (SD, CR, False, SD),
    (NE, NN, False, NE),
    (NE, CR, False, NE),
    (NE, NE, False, NE),
    *[(PD, nt, new, PD) for nt in (CR, NN, NE, PD, None) for new in (False, True)],
    *[(t, PD, new, PD) for t in (CR, PR, SD, NE, PD, None) for new in (False, True)],
    *[(t, nt, True, PD) for t in (CR, PR, SD, NE, None) for nt in (CR, NN, NE, None)],
    # No non-target lesion at baseline: the target response decides.
    (CR, None, False, CR),
    (PR, None, False, PR),
    (SD, None, False, SD),
    (NE, None, False, NE),
]

# Table 2: non-target disease only.
TABLE_2 = [
    (None, CR, False, CR),
    (None, NN, False, NN),
    (None, NE, False, NE),
    (None, PD, False, PD),
    (None, PD, True, PD),
    (None, CR, True, PD),
    (None, NN, True, PD),
    (None, NE, True, PD),
]


@pytest.mark.parametrize(("target", "non_target", "new", "expected"), TABLE_1 + TABLE_2)
def test_overall_response_table(target, non_target, new, expected):
    assert overall_response(target, non_target, new) == expected


def lesions(*diameters, nodes=()):
    return [TargetLesion(key=i, diameter=d, lymph_node=i in nodes) for i, d in enumerate(diameters)]


def measured(*diameters):
    return dict(enumerate(diameters))


# --- the +20 % / +5 mm rule at its boundaries (from the nadir) -------------------------------


def test_19_9_percent_above_the_nadir_is_not_progression():
    # nadir 100 mm, now 119.9 mm: +19.9 mm but +19.9 % only.
    targets = lesions(100)
    assert (
        target_response(targets, measured("119.9"), baseline=Decimal(100), nadir=Decimal(100)) == SD
    )


def test_20_percent_with_4_mm_is_not_progression():
    # nadir 20 mm, now 24 mm: +20 % but only +4 mm.
    targets = lesions(20)
    assert target_response(targets, measured(24), baseline=Decimal(20), nadir=Decimal(20)) == SD
    assert not is_progression(Decimal(24), Decimal(20))


def test_20_percent_with_5_mm_is_progression():
    # nadir 25 mm, now 30 mm: exactly +20 % and exactly +5 mm.
    targets = lesions(25)
    assert target_response(targets, measured(30), baseline=Decimal(25), nadir=Decimal(25)) == PD
    assert is_progression(Decimal(30), Decimal(25))


def test_thresholds_are_exact_with_decimal_millimetres():
    assert is_progression(Decimal("30.0"), Decimal("25.0"))
    assert not is_progression(Decimal("29.9"), Decimal("25.0"))
    # 30 % below the baseline exactly is a PR; 29.9 % is not.
    targets = lesions(100)
    assert target_response(targets, measured(70), baseline=Decimal(100), nadir=Decimal(100)) == PR
    assert (
        target_response(targets, measured("70.1"), baseline=Decimal(100), nadir=Decimal(100)) == SD
    )


# --- nadir vs baseline --------------------------------------------------------------------------


def test_progression_is_measured_from_the_nadir_and_response_from_the_baseline():
    targets = lesions(60, 40)  # baseline sum 100
    points = derive(
        targets,
        [],
        [
            Assessment(day(42), measured(30, 20)),  # 50: -50 % -> PR, nadir becomes 50
            Assessment(day(84), measured(35, 25)),  # 60: +20 % and +10 mm from nadir 50 -> PD
        ],
    )
    assert [p.target for p in points] == [PR, PD]
    assert points[1].nadir == Decimal(50)
    assert points[1].change_from_baseline == Decimal("-40.0")  # still a PR against the baseline
    assert points[1].change_from_nadir == Decimal("20.0")


def test_growth_from_the_nadir_below_20_percent_stays_a_response():
    targets = lesions(60, 40)
    points = derive(
        targets,
        [],
        [
            Assessment(day(42), measured(30, 20)),  # 50 -> PR
            Assessment(day(84), measured(32, 27)),  # 59: +18 % from the nadir, -41 % from baseline
        ],
    )
    assert [p.target for p in points] == [PR, PR]


def test_growth_from_baseline_counts_when_the_baseline_is_the_nadir():
    targets = lesions(50)
    points = derive(
        targets, [], [Assessment(day(42), measured(55)), Assessment(day(84), measured(61))]
    )
    # 55: +10 % -> SD (nadir stays the baseline 50); 61: +22 % and +11 mm from 50 -> PD.
    assert [p.target for p in points] == [SD, PD]
    assert points[1].nadir == Decimal(50)


def test_an_incomplete_assessment_does_not_set_the_nadir():
    targets = lesions(50, 50)
    points = derive(
        targets,
        [],
        [
            Assessment(day(42), {0: 10, 1: None}),  # only one measured: NE, sum 10 is not a nadir
            Assessment(day(84), measured(40, 40)),  # 80 vs nadir 100: -20 % -> SD
        ],
    )
    assert [p.target for p in points] == [NE, SD]
    assert points[1].nadir == Decimal(100)


# --- lymph-node CR ------------------------------------------------------------------------------


def test_nodes_under_10_mm_are_normal_so_a_cr_has_a_sum_above_zero():
    targets = lesions(30, 20, nodes={1})  # a liver lesion 30 mm, a node 20 mm short axis
    points = derive(targets, [], [Assessment(day(42), measured(0, 9))])
    assert points[0].target == CR
    assert points[0].target_sum == Decimal(9)
    assert points[0].overall == CR


def test_a_node_of_10_mm_is_not_normal():
    targets = lesions(30, 20, nodes={1})
    points = derive(targets, [], [Assessment(day(42), measured(0, 10))])
    assert points[0].target == PR  # 10 mm of 50: -80 %, but the node is still pathological


def test_a_non_nodal_lesion_must_disappear_for_a_cr():
    targets = lesions(30, 20, nodes={1})
    assert target_response(targets, measured(1, 5), baseline=Decimal(50), nadir=Decimal(50)) == PR


def test_after_a_cr_a_reappearing_lesion_of_5_mm_is_progression():
    targets = lesions(20)
    points = derive(
        targets, [], [Assessment(day(42), measured(0)), Assessment(day(84), measured(5))]
    )
    assert [p.target for p in points] == [CR, PD]  # nadir 0: the 5 mm decide


# --- NE -----------------------------------------------------------------------------------------


def test_a_target_not_evaluated_makes_the_target_response_ne():
    targets = lesions(30, 20)
    assert target_response(targets, {0: 10}, baseline=Decimal(50), nadir=Decimal(50)) == NE
    assert target_response(targets, {0: 10, 1: None}, baseline=Decimal(50), nadir=Decimal(50)) == NE


def test_progression_shown_by_the_lesions_measured_is_pd_even_with_one_missing():
    targets = lesions(30, 20)
    # 65 mm on the one measured lesion alone: +30 % and +15 mm from 50.
    assert target_response(targets, {0: 65}, baseline=Decimal(50), nadir=Decimal(50)) == PD


def test_ne_target_with_non_pd_non_target_is_ne_overall():
    points = derive(
        lesions(30, 20),
        ["liver-2"],
        [Assessment(day(42), {0: 10}, {"liver-2": NonTargetStatus.PRESENT})],
    )
    assert points[0].target == NE
    assert points[0].non_target == NN
    assert points[0].overall == NE


# --- non-target response ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ({"a": "absent", "b": "absent"}, CR),
        ({"a": "absent", "b": "present"}, NN),
        ({"a": "present", "b": "not_evaluated"}, NE),
        ({"a": "present"}, NE),  # b missing: not evaluated
        ({"a": "progression", "b": "not_evaluated"}, PD),
    ],
)
def test_non_target_response(statuses, expected):
    assert non_target_response(["a", "b"], statuses) == expected


def test_no_non_target_lesion_at_baseline_is_not_applicable():
    assert non_target_response([], {}) is None


def test_new_lesions_are_progression_whatever_the_measurements():
    points = derive(lesions(50), [], [Assessment(day(42), measured(10), new_lesions=True)])
    assert points[0].target == PR
    assert points[0].overall == PD


def test_non_target_disease_only_follows_table_2():
    points = derive(
        [],
        ["bone"],
        [
            Assessment(day(42), {}, {"bone": "present"}),
            Assessment(day(84), {}, {"bone": "absent"}),
            Assessment(day(126), {}, {"bone": "progression"}),
        ],
    )
    assert [p.overall for p in points] == [NN, CR, PD]
    assert points[0].target is None and points[0].target_sum is None


# --- best overall response ----------------------------------------------------------------------


def bor(*points, randomized_on=START):
    return best_overall_response(
        [(day(n), r) for n, r in points], randomized_on=randomized_on
    ).response


def test_cr_confirmed_4_weeks_later():
    assert bor((42, CR), (70, CR)) == CR
    best = best_overall_response([(day(42), CR), (day(70), CR)], randomized_on=START)
    assert (best.day, best.confirmed_on) == (day(42), day(70))


def test_cr_not_confirmed_when_the_second_is_under_4_weeks_later():
    # 27 days later: unconfirmed, but SD or better at >= 6 weeks from randomization -> SD.
    assert bor((42, CR), (69, CR)) == SD


def test_pr_confirmed_by_a_later_pr_or_cr():
    assert bor((42, PR), (84, PR)) == PR
    assert bor((42, PR), (84, CR)) == PR
    assert bor((42, PR), (63, NE), (84, PR)) == PR  # an NE in between does not break it


def test_cr_then_pr_is_not_a_confirmed_response():
    assert bor((42, CR), (84, PR)) == SD


def test_unconfirmed_pr_then_progression():
    assert bor((42, PR), (84, PD)) == SD  # SD duration met by the PR at day 42
    assert bor((35, PR), (84, PD)) == PD  # the PR came before 6 weeks: SD not shown


def test_sd_requires_six_weeks_from_randomization():
    assert bor((42, SD)) == SD
    assert bor((41, SD)) == NE
    assert bor((41, SD), (84, PD)) == PD


def test_responses_after_progression_do_not_count():
    assert bor((42, PD), (84, CR), (126, CR)) == PD


def test_no_assessment_or_only_ne_is_ne():
    assert bor() == NE
    assert bor((42, NE), (84, NE)) == NE


def test_non_target_only_disease_best_response():
    assert bor((42, NN), (84, NN)) == NN
    assert bor((42, CR), (84, CR)) == CR


def test_sd_minimum_is_a_setting():
    best = best_overall_response([(day(40), SD)], randomized_on=START, sd_min_days=35)
    assert best.response == SD


def test_date_of_first_progression():
    assert first_progression([(day(42), SD), (day(126), PD), (day(84), PD)]) == day(84)
    assert first_progression([(day(42), SD)]) is None
