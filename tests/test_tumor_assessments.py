"""RECIST tumor assessment CRFs: baseline lesions, assessments, the stored derived response,
the selectors the survival endpoints use."""

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from core.errors import AccessDenied
from core.roles import Role
from efficacy import selectors, services
from efficacy.models import TargetMeasurement, TumorAssessment
from randomization.selectors import randomization_dates

from . import builders
from .builders.efficacy import add_assessment, add_baseline, add_efficacy_records
from .builders.subjects import days_ago

pytestmark = pytest.mark.django_db


def target(subject, by, organ="liver", diameter=30, **extra):
    return services.add_target_lesion(
        subject,
        user=by,
        organ=organ,
        location=extra.pop("location", "somewhere"),
        diameter=diameter,
        baseline_date=extra.pop("baseline_date", days_ago(100)),
        method="CT",
        **extra,
    )


# --- baseline lesions --------------------------------------------------------------------------


def test_a_lesion_under_10_mm_is_not_measurable(subject, coordinator):
    with pytest.raises(ValidationError) as refused:
        target(subject, coordinator, diameter="9.9")
    assert "not measurable" in str(refused.value)
    assert target(subject, coordinator, diameter=10).code == "T1"


def test_a_lymph_node_needs_15_mm_short_axis(subject, coordinator):
    with pytest.raises(ValidationError) as refused:
        target(subject, coordinator, organ="lymph_node", diameter="14.9")
    assert "15" in str(refused.value) and "short axis" in str(refused.value)
    assert target(subject, coordinator, organ="lymph_node", diameter=15).lymph_node


def test_at_most_two_targets_per_organ_and_five_in_all(subject, coordinator):
    target(subject, coordinator, organ="liver")
    target(subject, coordinator, organ="liver")
    with pytest.raises(ValidationError) as refused:
        target(subject, coordinator, organ="liver")
    assert "2 target lesions in this organ (Liver)" in str(refused.value)
    target(subject, coordinator, organ="lung")
    target(subject, coordinator, organ="lung")
    target(subject, coordinator, organ="lymph_node", diameter=20)
    with pytest.raises(services.EfficacyError) as refused:
        target(subject, coordinator, organ="bone")
    assert "already has 5 target lesions" in str(refused.value)


def test_lesions_are_chosen_before_the_first_assessment(subject, coordinator):
    add_baseline(subject, by=coordinator)
    add_assessment(
        subject,
        by=coordinator,
        days_ago_=50,
        measurements={1: 30, 2: 15},
        investigator_response="SD",
    )
    with pytest.raises(services.EfficacyError) as refused:
        target(subject, coordinator)
    assert "chosen at baseline" in str(refused.value)


def test_another_sites_user_cannot_record_lesions(subject, other_coordinator):
    with pytest.raises(AccessDenied):
        target(subject, other_coordinator)


def test_a_monitor_cannot_record_an_assessment(subject, coordinator, site):
    add_baseline(subject, by=coordinator)
    monitor = builders.make_user(Role.MONITOR, site)
    with pytest.raises(AccessDenied):
        add_assessment(
            subject, by=monitor, days_ago_=50, measurements={1: 30}, investigator_response="SD"
        )


# --- assessments and the derived response --------------------------------------------------------


def test_the_derived_response_is_stored_beside_the_investigators(subject, coordinator):
    add_baseline(subject, by=coordinator)  # 40 + 20 = 60 mm, one non-target
    first = add_assessment(
        subject,
        by=coordinator,
        days_ago_=58,
        measurements={1: 28, 2: 8},
        investigator_response="PR",
    )
    assert first.target_sum == Decimal(36)
    assert first.change_from_baseline == Decimal("-40.0")
    assert (first.target_response, first.non_target_response) == ("PR", "NON-CR/NON-PD")
    assert first.derived_response == "PR"
    assert not first.responses_differ
    second = add_assessment(
        subject,
        by=coordinator,
        days_ago_=16,
        measurements={1: 30, 2: 9},
        new_lesions=True,
        investigator_response="SD",
    )
    assert second.nadir == Decimal(36)
    assert second.derived_response == "PD"
    assert second.responses_differ


def test_a_measurement_not_given_is_recorded_as_not_evaluated(subject, coordinator):
    add_baseline(subject, by=coordinator)
    assessment = add_assessment(
        subject, by=coordinator, days_ago_=50, measurements={1: 30}, investigator_response="SD"
    )
    rows = {m.lesion.number: m.diameter for m in assessment.measurements.all()}
    assert rows == {1: Decimal(30), 2: None}
    assert assessment.target_response == "NE"
    assert assessment.derived_response == "NE"


def test_correcting_an_earlier_assessment_recomputes_the_later_ones(subject, coordinator):
    add_baseline(subject, by=coordinator, targets=(("liver", "VIII", 50),))
    first = add_assessment(
        subject, by=coordinator, days_ago_=58, measurements={1: 30}, investigator_response="PR"
    )
    second = add_assessment(
        subject, by=coordinator, days_ago_=16, measurements={1: 35}, investigator_response="PR"
    )
    assert second.derived_response == "PR"  # 35 vs nadir 30: +16.7 %
    services.update_assessment(
        first, user=coordinator, reason="Transcription error: 25 mm", measurements={1: 25}
    )
    second.refresh_from_db()
    assert second.nadir == Decimal(25)
    assert second.derived_response == "PD"  # 35 vs nadir 25: +40 %, +10 mm
    reasons = list(second.history.values_list("history_change_reason", flat=True))
    assert "RECIST 1.1 response recomputed: Transcription error: 25 mm" in reasons


def test_correcting_a_baseline_diameter_recomputes_the_responses(subject, coordinator):
    lesions = add_baseline(subject, by=coordinator, targets=(("liver", "VIII", 50),))
    assessment = add_assessment(
        subject, by=coordinator, days_ago_=50, measurements={1: 36}, investigator_response="SD"
    )
    assert assessment.derived_response == "SD"  # -28 %
    services.update_target_lesion(
        lesions[0], user=coordinator, reason="Re-read baseline: 52 mm", diameter=52
    )
    assessment.refresh_from_db()
    assert assessment.derived_response == "PR"  # 36 vs 52: -30.8 %


def test_an_assessment_before_the_baseline_scan_is_refused(subject, coordinator):
    add_baseline(subject, by=coordinator, baseline_days_ago=30)
    with pytest.raises(ValidationError) as refused:
        add_assessment(
            subject, by=coordinator, days_ago_=40, measurements={1: 30}, investigator_response="SD"
        )
    assert "after the baseline scan" in str(refused.value)


def test_unknown_lesions_and_bad_values_are_refused_with_a_sentence(subject, coordinator):
    add_baseline(subject, by=coordinator)
    with pytest.raises(services.EfficacyError, match="T7 is not a baseline target lesion"):
        add_assessment(
            subject,
            by=coordinator,
            days_ago_=40,
            measurements={"T7": 3},
            investigator_response="SD",
        )
    with pytest.raises(services.EfficacyError, match="not a diameter"):
        add_assessment(
            subject,
            by=coordinator,
            days_ago_=40,
            measurements={1: "3cm"},
            investigator_response="SD",
        )
    with pytest.raises(ValidationError):
        add_assessment(
            subject, by=coordinator, days_ago_=40, measurements={1: -1}, investigator_response="SD"
        )
    assert not TumorAssessment.objects.filter(subject=subject).exists()
    assert not TargetMeasurement.objects.exists()


def test_new_lesions_need_a_description(subject, coordinator):
    add_baseline(subject, by=coordinator)
    with pytest.raises(ValidationError) as refused:
        services.record_assessment(
            subject,
            user=coordinator,
            assessment_date=days_ago(40),
            method="CT",
            measurements={1: 30, 2: 10},
            new_lesions=True,
            investigator_response="PD",
        )
    assert "new_lesions_description" in refused.value.message_dict


def test_every_change_is_audited(subject, coordinator):
    (assessment, _) = add_efficacy_records(subject, by=coordinator)
    assert assessment.history.first().history_user == coordinator
    services.update_assessment(
        assessment, user=coordinator, reason="Read again", investigator_response="SD"
    )
    assert assessment.history.first().history_change_reason == "Read again"
    with pytest.raises(services.EfficacyError, match="reason"):
        services.update_assessment(assessment, user=coordinator, reason="", method="MRI")


# --- selectors for PFS and the best response ---------------------------------------------------


def test_progression_and_last_adequate_assessment_dates(coordinator, site):
    progressed = builders.make_randomized_subject(site, by=coordinator)
    stable = builders.make_randomized_subject(site, by=coordinator)
    add_efficacy_records(progressed, by=coordinator)
    add_baseline(stable, by=coordinator)
    add_assessment(
        stable,
        by=coordinator,
        days_ago_=58,
        measurements={1: 38, 2: 19},
        investigator_response="SD",
    )
    add_assessment(
        stable, by=coordinator, days_ago_=16, measurements={1: 38}, investigator_response="SD"
    )  # node not evaluated: NE
    ids = [progressed.pk, stable.pk]
    assert selectors.progression_dates(ids) == {progressed.pk: days_ago(16)}
    assert selectors.first_progression(stable) is None
    assert selectors.last_adequate_assessment_dates(ids) == {
        progressed.pk: days_ago(16),
        stable.pk: days_ago(58),
    }


def test_best_overall_response_uses_the_randomization_date(coordinator, site, settings):
    subject = builders.make_randomized_subject(site, by=coordinator)
    randomized = randomization_dates([subject.pk])[subject.pk]
    add_baseline(subject, by=coordinator, baseline_days_ago=5)
    # Randomized today, assessed today: SD is shown only once the SD minimum is 0 days.
    services.record_assessment(
        subject,
        user=coordinator,
        assessment_date=randomized,
        method="CT",
        measurements={1: 38, 2: 19},
        non_targets={1: "present"},
        investigator_response="SD",
    )
    assert selectors.best_response(subject).response == "NE"  # SD before six weeks
    settings.EFFICACY_SETTINGS = {"sd_min_days": 0}
    assert selectors.best_response(subject).response == "SD"


# --- edit checks (one query each) ---------------------------------------------------------------


def found(code, subject):
    from core.edit_checks import Scope
    from queries.checks import CHECKS_BY_CODE

    return CHECKS_BY_CODE[code].find(Scope(subject_ids=[subject.pk]))


def test_rec001_investigator_response_differs_from_the_derived(
    subject, coordinator, django_assert_num_queries
):
    add_baseline(subject, by=coordinator)
    agreed = add_assessment(
        subject,
        by=coordinator,
        days_ago_=58,
        measurements={1: 28, 2: 8},
        investigator_response="PR",
    )
    differs = add_assessment(
        subject,
        by=coordinator,
        days_ago_=16,
        measurements={1: 28, 2: 8},
        investigator_response="CR",
    )
    with django_assert_num_queries(1):
        violations = found("REC-001", subject)
    assert [v.object_id for v in violations] == [differs.pk]
    assert "Complete response (CR)" in violations[0].message
    assert "Partial response (PR)" in violations[0].message
    assert agreed.pk not in [v.object_id for v in violations]


def test_rec002_target_measurements_incomplete(subject, coordinator, django_assert_num_queries):
    add_baseline(subject, by=coordinator)
    add_assessment(
        subject,
        by=coordinator,
        days_ago_=58,
        measurements={1: 28, 2: 8},
        investigator_response="PR",
    )
    incomplete = add_assessment(
        subject, by=coordinator, days_ago_=16, measurements={1: 28}, investigator_response="NE"
    )
    with django_assert_num_queries(1):
        violations = found("REC-002", subject)
    assert [v.object_id for v in violations] == [incomplete.pk]
    assert "1 of the 2 target lesions was not measured" in violations[0].message


def test_rec003_new_lesion_without_progression_by_the_investigator(
    subject, coordinator, django_assert_num_queries
):
    add_baseline(subject, by=coordinator)
    missed = add_assessment(
        subject,
        by=coordinator,
        days_ago_=58,
        measurements={1: 28, 2: 8},
        new_lesions=True,
        investigator_response="PR",
    )
    add_assessment(
        subject,
        by=coordinator,
        days_ago_=16,
        measurements={1: 28, 2: 8},
        new_lesions=True,
        investigator_response="PD",
    )
    with django_assert_num_queries(1):
        violations = found("REC-003", subject)
    assert [v.object_id for v in violations] == [missed.pk]


# --- SDTM TU, TR, RS ------------------------------------------------------------------------------


def sdtm_rows(name, user=None):
    from efficacy.sdtm import DATASETS

    dataset = next(d for d in DATASETS if d.name == name)
    names = [c.name for c in dataset.columns]
    return [dict(zip(names, row, strict=True)) for row in dataset.rows(user)]


def test_sdtm_tu_tr_rs(coordinator, site, other_coordinator, other_site):
    subject = builders.make_randomized_subject(site, by=coordinator)
    add_efficacy_records(subject, by=coordinator)
    elsewhere = builders.make_randomized_subject(other_site, by=other_coordinator)
    add_efficacy_records(elsewhere, by=other_coordinator)

    tu = [r for r in sdtm_rows("TU", coordinator)]
    assert [(r["TULNKID"], r["TUORRES"], r["VISIT"]) for r in tu] == [
        ("T01", "TARGET", "BASELINE"),
        ("T02", "TARGET", "BASELINE"),
        ("NT01", "NON-TARGET", "BASELINE"),
        ("NEW02", "NEW", "ASSESSMENT 2"),
    ]
    assert {r["USUBJID"] for r in tu} == {f"TORI-BEV-HCC-3-{subject.subject_identifier}"}
    assert [r["TUSEQ"] for r in tu] == [1, 2, 3, 4]
    assert tu[1]["TULOC"] == "LYMPH NODE"

    tr = sdtm_rows("TR", coordinator)
    view = [(r["VISITNUM"], r["TRLNKID"], r["TRTESTCD"], r["TRORRES"]) for r in tr]
    assert view[:4] == [
        (0, "T01", "LDIAM", "40"),
        (0, "T02", "SAXIS", "20"),
        (0, None, "SUMDIAM", "60"),
        (1, "T01", "LDIAM", "28"),
    ]
    assert (1, None, "SUMDIAM", "36") in view
    assert (1, None, "PCBSD", "-40") in view
    assert (1, "NT01", "TUMSTATE", "PRESENT") in view
    assert (2, None, "PCNSD", "8.3") in view
    assert [r["TRSEQ"] for r in tr] == list(range(1, len(tr) + 1))

    rs = sdtm_rows("RS", coordinator)
    view = [(r["VISITNUM"], r["RSTESTCD"], r["RSORRES"], r["RSEVAL"], r["RSDRVFL"]) for r in rs]
    assert (1, "OVRLRESP", "PR", None, "Y") in view
    assert (1, "OVRLRESP", "PR", "INVESTIGATOR", None) in view
    assert (2, "OVRLRESP", "PD", None, "Y") in view
    assert (1, "NTRGRESP", "NON-CR/NON-PD", None, "Y") in view
    # The PR is unconfirmed (PD next), and randomized today: not yet six weeks: PD.
    assert view[-1] == (None, "BESTRESP", "PD", None, "Y")
    assert len(sdtm_rows("RS")) == 2 * len(rs)  # the operator (None) sees both sites


# --- exports ------------------------------------------------------------------------------------


def test_the_forms_are_in_the_export_registry():
    from core import registry

    names = {form.name for form in registry.export_forms()}
    assert {"target-lesions", "non-target-lesions", "tumor-assessments"} <= names


# --- pages --------------------------------------------------------------------------------------


def efficacy_url(subject, name, *args):
    from django.urls import reverse

    return reverse(f"efficacy:{name}", args=[subject.subject_identifier, *args])


def test_site_staff_enter_the_baseline_and_an_assessment_through_the_pages(
    client, coordinator, subject
):
    from .builders.pages import token_in

    client.force_login(coordinator)
    url = efficacy_url(subject, "target_new")
    baseline = days_ago(60).isoformat()
    for organ, location, diameter in (
        ("liver", "Segment VIII", "40"),
        ("lymph_node", "Porta", "20"),
    ):
        page = client.get(url).content.decode()
        response = client.post(
            url,
            {
                "organ": organ,
                "location": location,
                "baseline_date": baseline,
                "method": "CT",
                "diameter": diameter,
                "submission": token_in(page),
            },
        )
        assert response.status_code == 302, response.content.decode()
    # A small node is refused with the rule's sentence, not a 500.
    page = client.get(url).content.decode()
    response = client.post(
        url,
        {
            "organ": "lymph_node",
            "location": "Celiac",
            "baseline_date": baseline,
            "method": "CT",
            "diameter": "12",
            "submission": token_in(page),
        },
    )
    assert response.status_code == 200
    assert "needs &gt;= 15 mm short axis" in response.content.decode()

    url = efficacy_url(subject, "assessment_new")
    page = client.get(url).content.decode()
    # Each target's baseline and nadir beside its input.
    assert "<td>40.0</td><td>40.0</td>" in page and 'name="target_1"' in page
    response = client.post(
        url,
        {
            "assessment_date": days_ago(10).isoformat(),
            "method": "CT",
            "target_1": "0",
            "target_2": "9",
            "investigator_response": "PR",
            "submission": token_in(page),
        },
        follow=True,
    )
    page = response.content.decode()
    assert "RECIST 1.1 derives Complete response (CR)" in page
    assert "They differ" in page
    assessment = TumorAssessment.objects.get(subject=subject)
    assert assessment.derived_response == "CR"
    page = client.get(efficacy_url(subject, "assessment", 1)).content.decode()
    assert "<td>40.0</td>" in page  # the baseline beside the follow-up measurement
    page = client.get(subject.get_absolute_url()).content.decode()
    assert "Tumor assessments (RECIST 1.1)" in page


def test_a_monitor_reads_the_assessment_without_a_form(client, site, subject, coordinator):
    from .builders.pages import write_forms

    add_efficacy_records(subject, by=coordinator)
    client.force_login(builders.make_user(Role.MONITOR, site))
    page = client.get(efficacy_url(subject, "assessment", 2)).content.decode()
    assert "Progressive disease (PD)" in page
    assert write_forms(page) == 0
    response = client.post(efficacy_url(subject, "assessment_new"), {}, follow=True)
    assert "You may view" in response.content.decode()


def test_another_sites_user_gets_404(client, subject, coordinator, other_coordinator):
    add_efficacy_records(subject, by=coordinator)
    client.force_login(other_coordinator)
    for name, args in (("home", ()), ("assessment", (1,)), ("target_edit", (1,))):
        assert client.get(efficacy_url(subject, name, *args)).status_code == 404
