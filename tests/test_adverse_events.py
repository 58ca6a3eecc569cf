"""The AE CRF rules: coding, grades, dates, seriousness, causality per drug, death, history."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from adverse_events import services
from adverse_events.models import AdverseEvent, AeCausality, CtcaeTerm
from adverse_events.sae_clock import SaeClock
from adverse_events.services import record_adverse_event, update_adverse_event
from core.audit import audited_save, history_rows
from core.errors import AccessDenied, DomainError
from core.roles import Role
from randomization.arms import Arm
from subjects import services as subject_services
from subjects.models import SubjectStatus

from .builders import (
    days_ago,
    make_eligible_subject,
    make_randomized_subject,
    make_subject,
    make_user,
    site_today,
)

pytestmark = pytest.mark.usefixtures("ctcae")


def term(name):
    return CtcaeTerm.objects.get(term=name)


def ae_data(**overrides):
    data = {
        "term": term("Hypertension"),
        "grade": 2,
        "onset_date": site_today(),
        "ongoing": True,
        "outcome": "not_recovered",
    }
    data.update(overrides)
    return data


def fatal_data(**overrides):
    return ae_data(
        term=term("Upper gastrointestinal hemorrhage"),
        grade=5,
        ongoing=False,
        end_date=site_today(),
        death_date=site_today(),
        outcome="fatal",
        serious=True,
        sc_death=True,
        site_aware_at=timezone.now() - timedelta(minutes=5),
        **overrides,
    )


def refused(call, match, error=(DomainError, ValidationError)):
    with pytest.raises(error) as info:
        call()
    text = (
        " ".join(info.value.messages)
        if isinstance(info.value, ValidationError)
        else str(info.value)
    )
    assert match in text, text
    return info.value


@pytest.fixture
def early_subject(site, coordinator):
    """A consented subject (consent 30 days ago), not randomized: no study drug."""
    return make_subject(site, by=coordinator, consent_date=days_ago(30))


def randomized_in(arm, site, by):
    """A randomized subject of ``arm`` (the list's blocks hold both arms)."""
    for _ in range(12):
        subject = make_randomized_subject(site, by=by)
        if services.arm_of(subject) == arm:
            return subject
    raise AssertionError(f"no subject randomized to arm {arm} in 12 tries")


@pytest.fixture
def arm_a(site, coordinator):
    return randomized_in(Arm.A, site, coordinator)


@pytest.fixture
def arm_b(site, coordinator):
    return randomized_in(Arm.B, site, coordinator)


CAUSALITY_A = {
    "toripalimab": {"causality": "unlikely", "action_taken": "not_changed"},
    "bevacizumab": {"causality": "probable", "action_taken": "interrupted"},
}
CAUSALITY_B = {"sorafenib": {"causality": "possible", "action_taken": "reduced"}}


# --- recording -----------------------------------------------------------------------------------


def test_record_a_simple_ae(early_subject, coordinator):
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data(treatment_given=False))
    assert ae.ae_number == 1
    assert str(ae) == f"{early_subject} AE 1: Hypertension (grade 2)"
    assert ae.causalities.count() == 0  # not randomized: no study drug
    second = record_adverse_event(early_subject, user=coordinator, **ae_data(grade=1))
    assert second.ae_number == 2
    created = ae.history.get()
    assert created.history_type == "+"
    assert created.history_user == coordinator
    assert created.history_change_reason == "Adverse event recorded"


def test_term_by_meddra_code(early_subject, coordinator):
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data(term="10020772"))
    assert ae.term.term == "Hypertension"
    refused(
        lambda: record_adverse_event(early_subject, user=coordinator, **ae_data(term="99999999")),
        "There is no CTCAE v5.0 term with MedDRA code 99999999.",
    )


def test_required_fields_and_unknown_fields(early_subject, coordinator):
    data = ae_data()
    del data["grade"], data["outcome"]
    refused(
        lambda: record_adverse_event(early_subject, user=coordinator, **data),
        "Give the grade.",
    )
    refused(
        lambda: record_adverse_event(early_subject, user=coordinator, **ae_data(colour="red")),
        "These are not fields of the adverse event form: colour.",
    )


def test_consent_is_required(site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    refused(
        lambda: record_adverse_event(subject, user=coordinator, **ae_data()),
        "has no informed consent recorded",
    )
    assert not AdverseEvent.objects.exists()


def test_only_data_entry_roles_at_the_subject_site(early_subject, other_coordinator, site):
    monitor = make_user(Role.MONITOR, site)
    data_manager = make_user(Role.DATA_MANAGER)
    investigator = make_user(Role.INVESTIGATOR, site)
    for user in (other_coordinator, monitor, data_manager):
        refused(
            lambda user=user: record_adverse_event(early_subject, user=user, **ae_data()),
            "at site 101.",  # the foundation's sentence (role order may vary)
            AccessDenied,
        )
    assert record_adverse_event(early_subject, user=investigator, **ae_data()).pk


# --- term and grade -------------------------------------------------------------------------------


def test_other_specify_needs_the_verbatim_name(early_subject, coordinator):
    other = term("Hepatobiliary disorders - Other, specify")
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(term=other, verbatim_term="  ")
        ),
        '"Hepatobiliary disorders - Other, specify" is an "Other, specify" term: give the '
        "verbatim name of the event.",
    )
    ae = record_adverse_event(
        early_subject,
        user=coordinator,
        **ae_data(term=other, verbatim_term="Immune-mediated hepatitis"),
    )
    assert "Immune-mediated hepatitis" in str(ae)


@pytest.mark.parametrize(
    ("name", "grade", "message"),
    [
        ("Alopecia", 3, "Alopecia has no grade 3: its grades are 1, 2."),
        ("Aspartate aminotransferase increased", 5, "has no grade 5: its grades are 1, 2, 3, 4."),
        ("Acidosis", 2, "Acidosis has no grade 2: its grades are 1, 3, 4, 5."),
        ("Death NOS", 4, "Death NOS has no grade 4: its grades are 5."),
    ],
)
def test_grade_must_be_one_the_term_has(early_subject, coordinator, name, grade, message):
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(term=term(name), grade=grade)
        ),
        message,
    )


def test_gap_grades_are_accepted(early_subject, coordinator):
    ae = record_adverse_event(
        early_subject, user=coordinator, **ae_data(term=term("Acidosis"), grade=3)
    )
    assert ae.grade == 3


# --- dates ---------------------------------------------------------------------------------------


def test_onset_not_before_consent_nor_in_the_future(early_subject, coordinator):
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(onset_date=days_ago(31))
        ),
        f"The onset date is before the informed consent ({days_ago(30):%Y-%m-%d})",
    )
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(onset_date=days_ago(-2))
        ),
        "The onset date is in the future.",
    )
    assert record_adverse_event(
        early_subject, user=coordinator, **ae_data(onset_date=days_ago(30))
    ).pk


def test_end_date_or_ongoing_exactly_one(early_subject, coordinator):
    def record(**kw):
        return lambda: record_adverse_event(early_subject, user=coordinator, **ae_data(**kw))

    refused(record(ongoing=False), "Give the end date, or mark the event ongoing.")
    refused(
        record(ongoing=True, end_date=site_today(), outcome="recovered"),
        "Give an end date or mark the event ongoing, not both.",
    )
    refused(
        record(onset_date=days_ago(5), ongoing=False, end_date=days_ago(6), outcome="recovered"),
        "The end date is before the onset date.",
    )
    refused(
        record(ongoing=False, end_date=days_ago(-2), outcome="recovered"),
        "The end date is in the future.",
    )
    ae = record_adverse_event(
        early_subject,
        user=coordinator,
        **ae_data(onset_date=days_ago(5), ongoing=False, end_date=days_ago(5), outcome="recovered"),
    )
    assert ae.end_date == days_ago(5)


def test_outcome_agrees_with_end_date(early_subject, coordinator):
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(ongoing=True, outcome="recovered")
        ),
        'An event with outcome "Recovered/resolved" has ended: give its end date',
    )
    refused(
        lambda: record_adverse_event(
            early_subject,
            user=coordinator,
            **ae_data(ongoing=False, end_date=site_today(), outcome="recovering"),
        ),
        'An event with outcome "Recovering/resolving" is ongoing',
    )
    assert record_adverse_event(
        early_subject, user=coordinator, **ae_data(ongoing=True, outcome="unknown")
    ).pk


def test_treatment_given_needs_its_description(early_subject, coordinator):
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(treatment_given=True)
        ),
        "Describe the treatment given for the event.",
    )
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(treatment_details="Amlodipine")
        ),
        "tick 'treatment given' or clear the description",
    )
    ae = record_adverse_event(
        early_subject,
        user=coordinator,
        **ae_data(treatment_given=True, treatment_details="Amlodipine 5 mg", immune_related=False),
    )
    assert ae.treatment_given


# --- seriousness ------------------------------------------------------------------------------


def test_serious_needs_a_criterion_and_the_awareness_time(early_subject, coordinator):
    aware = timezone.now() - timedelta(hours=1)

    def record(**kw):
        return lambda: record_adverse_event(early_subject, user=coordinator, **ae_data(**kw))

    onset = timezone.localdate(aware, early_subject.site.zoneinfo)  # the site's date of it
    refused(
        record(onset_date=onset, serious=True, site_aware_at=aware),
        "needs at least one seriousness criterion",
    )
    refused(
        record(sc_hospitalization=True),
        "Seriousness criteria are given but the event is not marked serious",
    )
    refused(
        record(serious=True, sc_hospitalization=True),
        "Give the date and time the site became aware of the serious event",
    )
    refused(
        record(serious=True, sc_hospitalization=True, site_aware_at=timezone.now() + timedelta(1)),
        "The time the site became aware is in the future.",
    )
    refused(
        record(
            onset_date=days_ago(3),
            serious=True,
            sc_hospitalization=True,
            site_aware_at=timezone.now() - timedelta(days=5),
        ),
        "The site cannot have become aware before the onset.",
    )
    ae = record_adverse_event(
        early_subject,
        user=coordinator,
        **ae_data(
            onset_date=onset,
            serious=True,
            sc_life_threatening=True,
            sc_other_important=True,
            site_aware_at=aware,
        ),
    )
    assert ae.serious_criteria == ["Life-threatening", "Other important medical event"]
    assert ae.sae_due_at == aware + timedelta(hours=24)


def test_death_criterion_only_for_a_fatal_event(early_subject, coordinator):
    refused(
        lambda: record_adverse_event(
            early_subject,
            user=coordinator,
            **ae_data(serious=True, sc_death=True, site_aware_at=timezone.now()),
        ),
        '"Results in death" applies only to a fatal (grade 5) event.',
    )


# --- grade 5 and death ------------------------------------------------------------------------


def test_grade_5_needs_fatal_outcome_death_date_and_death_criterion(arm_a, coordinator):
    def record(**kw):
        data = fatal_data(causality=CAUSALITY_A)
        data.update(kw)
        return lambda: record_adverse_event(arm_a, user=coordinator, **data)

    refused(
        record(outcome="not_recovered", ongoing=True, end_date=None),
        "A grade 5 event is fatal: its outcome must be fatal.",
    )
    refused(record(grade=4), "A fatal outcome means grade 5")
    refused(record(death_date=None), "A fatal (grade 5) event needs the date of death.")
    refused(
        record(sc_death=False, sc_hospitalization=True),
        'A fatal (grade 5) event is serious with the criterion "results in death".',
    )
    refused(
        record(ongoing=True, end_date=None),
        'An event with outcome "Fatal" has ended: give its end date',
    )
    refused(
        lambda: record_adverse_event(
            arm_a,
            user=coordinator,
            **ae_data(death_date=site_today(), causality=CAUSALITY_A),
        ),
        "A date of death is given only for a fatal (grade 5) event.",
    )
    arm_a.refresh_from_db()
    assert arm_a.status == SubjectStatus.RANDOMIZED


def test_grade_5_moves_the_subject_to_died(arm_a, coordinator):
    ae = record_adverse_event(arm_a, user=coordinator, **fatal_data(causality=CAUSALITY_A))
    arm_a.refresh_from_db()
    assert arm_a.status == SubjectStatus.DIED
    assert arm_a.status_date == ae.death_date
    latest = arm_a.history.latest("history_date")
    assert latest.history_change_reason.startswith("Fatal adverse event recorded: AE 1")
    assert latest.history_user == coordinator


def test_grade_5_refused_when_the_subject_cannot_die_leaves_nothing(early_subject, coordinator):
    # A subject still in screening cannot become "died" through the status path: the AE is not
    # saved either (one transaction).
    refused(
        lambda: record_adverse_event(early_subject, user=coordinator, **fatal_data()),
        "A fatal (grade 5) event means the subject died, but",
    )
    assert not AdverseEvent.objects.exists()
    early_subject.refresh_from_db()
    assert early_subject.status == SubjectStatus.SCREENING


@pytest.fixture
def died_two_days_ago(arm_a, coordinator):
    """An arm A subject (screening and consent corrected to 10 days ago) recorded as died 2 days
    ago."""
    subject_services.update_demographics(
        arm_a, user=coordinator, reason="Screening date from the log", screening_date=days_ago(10)
    )
    subject_services.record_consent(
        arm_a,
        user=coordinator,
        consent_date=days_ago(10),
        consent_version="2.0",
        reason="Consent date corrected from the signed form",
    )
    # Randomized five days ago (randomization is dated today: corrected from the paper log).
    arm_a.status_date = days_ago(5)
    audited_save(arm_a, user=None, reason="From the paper log", validate_only=("status_date",))
    subject_services.change_status(
        arm_a, SubjectStatus.DIED, user=coordinator, reason="Death reported", on_date=days_ago(2)
    )
    arm_a.refresh_from_db()
    return arm_a


def test_fatal_ae_of_a_subject_already_recorded_as_died(died_two_days_ago, coordinator):
    subject = died_two_days_ago
    data = fatal_data(causality=CAUSALITY_A) | {"onset_date": days_ago(5)}
    refused(
        lambda: record_adverse_event(subject, user=coordinator, **data),
        f"{subject} is recorded as died on {days_ago(2):%Y-%m-%d}: the date of death of a fatal "
        "event must be the same.",
    )
    assert not AdverseEvent.objects.exists()
    data |= {"death_date": days_ago(2), "end_date": days_ago(2)}
    data["site_aware_at"] = timezone.now() - timedelta(days=1)
    ae = record_adverse_event(subject, user=coordinator, **data)
    assert ae.grade == 5
    subject.refresh_from_db()
    assert (subject.status, subject.status_date) == (SubjectStatus.DIED, days_ago(2))


def test_no_ae_starts_after_the_subjects_death(died_two_days_ago, coordinator):
    refused(
        lambda: record_adverse_event(
            died_two_days_ago,
            user=coordinator,
            **ae_data(onset_date=days_ago(1), causality=CAUSALITY_A),
        ),
        f"The onset date is after {died_two_days_ago}'s death ({days_ago(2):%Y-%m-%d}).",
    )


# --- causality per study drug of the arm --------------------------------------------------------


def test_arm_a_needs_toripalimab_and_bevacizumab(arm_a, coordinator):
    assert services.study_drugs_of(arm_a) == ("toripalimab", "bevacizumab")
    refused(
        lambda: record_adverse_event(arm_a, user=coordinator, **ae_data()),
        "Give the causality and action taken for Toripalimab and Bevacizumab (the study drugs "
        f"of {arm_a}'s arm).",
    )
    refused(
        lambda: record_adverse_event(
            arm_a,
            user=coordinator,
            **ae_data(causality={"toripalimab": CAUSALITY_A["toripalimab"]}),
        ),
        "Give the causality and action taken for Bevacizumab (the study drug of",
    )
    refused(
        lambda: record_adverse_event(
            arm_a, user=coordinator, **ae_data(causality=CAUSALITY_A | CAUSALITY_B)
        ),
        f"Sorafenib is not a study drug of {arm_a}'s arm (Toripalimab + bevacizumab): assess "
        "Toripalimab and Bevacizumab.",
    )
    assert not AdverseEvent.objects.exists()
    ae = record_adverse_event(arm_a, user=coordinator, **ae_data(causality=CAUSALITY_A))
    rows = {c.drug: c for c in ae.causalities.all()}
    assert set(rows) == {"toripalimab", "bevacizumab"}
    assert (rows["toripalimab"].causality, rows["toripalimab"].related) == ("unlikely", False)
    assert (rows["bevacizumab"].causality, rows["bevacizumab"].related) == ("probable", True)
    assert rows["bevacizumab"].action_taken == "interrupted"


def test_arm_b_needs_sorafenib_only(arm_b, coordinator):
    assert services.study_drugs_of(arm_b) == ("sorafenib",)
    refused(
        lambda: record_adverse_event(
            arm_b, user=coordinator, **ae_data(causality=CAUSALITY_A | CAUSALITY_B)
        ),
        f"Toripalimab is not a study drug of {arm_b}'s arm (Sorafenib): assess Sorafenib.",
    )
    ae = record_adverse_event(arm_b, user=coordinator, **ae_data(causality=CAUSALITY_B))
    (row,) = ae.causalities.all()
    assert (row.drug, row.causality, row.related, row.action_taken) == (
        "sorafenib",
        "possible",
        True,
        "reduced",
    )


@pytest.mark.parametrize(
    ("causality", "related"),
    [
        ("not_related", False),
        ("unlikely", False),
        ("possible", True),
        ("probable", True),
        ("definite", True),
    ],
)
def test_related_is_derived_from_the_scale(arm_b, coordinator, causality, related):
    ae = record_adverse_event(
        arm_b,
        user=coordinator,
        **ae_data(causality={"sorafenib": {"causality": causality, "action_taken": "not_changed"}}),
    )
    assert ae.causalities.get().related is related


def test_causality_values_are_checked(arm_b, coordinator):
    def record(assessment):
        return lambda: record_adverse_event(
            arm_b, user=coordinator, **ae_data(causality={"sorafenib": assessment})
        )

    refused(
        record({"causality": "maybe", "action_taken": "reduced"}),
        "Give the causality of the event to Sorafenib",
    )
    refused(
        record({"causality": "possible", "action_taken": "doubled"}),
        "Give the action taken with Sorafenib",
    )
    refused(
        record({"causality": "possible", "action_taken": "reduced", "dose": 2}),
        "Unknown causality fields for Sorafenib: dose.",
    )
    refused(
        lambda: record_adverse_event(
            arm_b, user=coordinator, **ae_data(causality={"aspirin": CAUSALITY_B["sorafenib"]})
        ),
        "'aspirin' is not a study drug of this trial.",
    )


def test_no_causality_before_randomization(early_subject, coordinator):
    assert services.study_drugs_of(early_subject) == ()
    refused(
        lambda: record_adverse_event(
            early_subject, user=coordinator, **ae_data(causality=CAUSALITY_B)
        ),
        f"{early_subject} is not randomized and takes no study drug: no causality is assessed.",
    )


def test_ae_recorded_before_randomization_gets_causality_at_its_next_update(site, coordinator):
    from randomization.services import randomize

    from .builders import ensure_active_list

    ensure_active_list()
    subject = make_eligible_subject(site, by=coordinator)
    ae = record_adverse_event(subject, user=coordinator, **ae_data())
    randomize(subject, coordinator)
    drugs = services.study_drugs_of(subject)
    assert drugs
    refused(
        lambda: update_adverse_event(ae, user=coordinator, reason="Follow-up", grade=3),
        "Give the causality and action taken for",
    )
    causality = {d: {"causality": "not_related", "action_taken": "not_applicable"} for d in drugs}
    update_adverse_event(ae, user=coordinator, reason="Follow-up", grade=3, causality=causality)
    assert set(ae.causalities.values_list("drug", flat=True)) == set(drugs)


# --- follow-up updates and the audit trail ------------------------------------------------------


def test_update_needs_a_reason(early_subject, coordinator):
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data())
    refused(
        lambda: update_adverse_event(ae, user=coordinator, reason="  ", grade=3),
        "A reason for change is required to change saved data.",
    )


def test_update_records_old_and_new_value_user_time_and_reason(early_subject, coordinator, site):
    investigator = make_user(Role.INVESTIGATOR, site)
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data())
    before = timezone.now()
    update_adverse_event(
        ae,
        user=investigator,
        reason="Follow-up visit: worsened",
        grade=3,
        treatment_given=True,
        treatment_details="Amlodipine 10 mg",
    )
    ae.refresh_from_db()
    assert ae.grade == 3
    record = ae.history.latest("history_date")
    assert record.history_type == "~"
    assert record.history_user == investigator
    assert record.history_change_reason == "Follow-up visit: worsened"
    assert record.history_date >= before
    (row, *_) = history_rows([record])
    changes = {c["field"]: (c["old"], c["new"]) for c in row["changes"]}
    assert changes["Grade"] == ("Grade 2", "Grade 3")
    assert changes["Treatment given"] == (False, True)
    assert changes["Treatment"] == ("—", "Amlodipine 10 mg")
    assert row["who"] == investigator
    assert row["reason"] == "Follow-up visit: worsened"


def test_every_rule_is_checked_again_on_update(early_subject, coordinator, other_coordinator):
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data())
    refused(
        lambda: update_adverse_event(ae, user=coordinator, reason="x", term=term("Death NOS")),
        "Death NOS has no grade 2",  # the grade stays 2: the new term must allow it
    )
    refused(
        lambda: update_adverse_event(
            ae, user=coordinator, reason="Resolved", ongoing=False, outcome="recovered"
        ),
        "Give the end date, or mark the event ongoing.",
    )
    refused(
        lambda: update_adverse_event(ae, user=coordinator, reason="x", serious=True),
        "needs at least one seriousness criterion",
    )
    refused(
        lambda: update_adverse_event(ae, user=other_coordinator, reason="x", grade=1),
        "at site 101.",
        AccessDenied,
    )
    refused(
        lambda: update_adverse_event(ae, user=coordinator, reason="x", subject=None),
        "These are not fields of the adverse event form: subject.",
    )
    ae.refresh_from_db()
    assert (ae.term.term, ae.grade, ae.ongoing) == ("Hypertension", 2, True)
    assert ae.history.count() == 1
    update_adverse_event(
        ae,
        user=coordinator,
        reason="Resolved at visit",
        ongoing=False,
        end_date=site_today(),
        outcome="recovered",
    )
    ae.refresh_from_db()
    assert (ae.ongoing, ae.end_date, ae.outcome) == (False, site_today(), "recovered")


def test_causality_follow_up_keeps_the_other_drug_and_is_audited(arm_a, coordinator):
    ae = record_adverse_event(arm_a, user=coordinator, **ae_data(causality=CAUSALITY_A))
    update_adverse_event(
        ae,
        user=coordinator,
        reason="Investigator reassessed causality",
        causality={"toripalimab": {"causality": "possible", "action_taken": "interrupted"}},
    )
    rows = {c.drug: c for c in ae.causalities.all()}
    assert (rows["toripalimab"].causality, rows["toripalimab"].related) == ("possible", True)
    assert rows["bevacizumab"].causality == "probable"
    record = rows["toripalimab"].history.latest("history_date")
    assert record.history_change_reason == "Investigator reassessed causality"
    assert record.history_user == coordinator
    (row,) = history_rows([record])
    assert {c["field"]: (c["old"], c["new"]) for c in row["changes"]}["Causality"] == (
        "Unlikely",
        "Possible",
    )
    assert rows["bevacizumab"].history.count() == 1  # unchanged: no new history record


def test_bulk_changes_cannot_bypass_the_audit_trail(early_subject, coordinator):
    from core.errors import BulkChangeRefused

    record_adverse_event(early_subject, user=coordinator, **ae_data())
    with pytest.raises(BulkChangeRefused):
        AdverseEvent.objects.update(grade=1)
    with pytest.raises(BulkChangeRefused):
        AeCausality.objects.all().delete()


# --- the SAE clock -----------------------------------------------------------------------------


def sae(subject, user, aware, **kw):
    """A serious AE the site became aware of at ``aware`` (by default, with its onset that day)."""
    kw.setdefault("onset_date", timezone.localdate(aware, subject.site.zoneinfo))
    return record_adverse_event(
        subject,
        user=user,
        **ae_data(serious=True, sc_hospitalization=True, site_aware_at=aware, **kw),
    )


def test_sae_clock_overdue_and_due_soon(early_subject, coordinator):
    now = timezone.now()
    overdue = sae(early_subject, coordinator, now - timedelta(hours=25), onset_date=days_ago(2))
    soon = sae(early_subject, coordinator, now - timedelta(hours=20), onset_date=days_ago(1))
    fresh = sae(early_subject, coordinator, now - timedelta(hours=1))
    not_serious = record_adverse_event(early_subject, user=coordinator, **ae_data())
    events = AdverseEvent.objects.all()
    assert list(events.in_sae_clock(SaeClock.OVERDUE, now=now)) == [overdue]
    assert list(events.in_sae_clock(SaeClock.DUE_SOON, now=now)) == [soon]
    assert set(events.sae_unreported(now)) == {overdue, soon, fresh}
    assert overdue.sae_clock(now) == SaeClock.OVERDUE
    assert soon.sae_clock(now) == SaeClock.DUE_SOON
    assert fresh.sae_clock(now) == SaeClock.PENDING
    assert not_serious.sae_clock(now) is None
    later = now + timedelta(hours=5)
    assert set(events.in_sae_clock(SaeClock.OVERDUE, now=later)) == {overdue, soon}


def test_the_sae_clock_reads_the_same_in_python_and_in_the_database(early_subject, coordinator):
    """One definition (``sae_clock``): the model's state and the queryset's filter agree for
    every event at every moment, boundaries included (exactly 24 h, exactly 6 h left)."""
    now = timezone.now().replace(microsecond=0)
    aware_hours_ago = (30, 24, 23.5, 18, 17.5, 1)
    events = [
        sae(early_subject, coordinator, now - timedelta(hours=h), onset_date=days_ago(2))
        for h in aware_hours_ago
    ]
    late, in_time = events[0], events[-1]
    services.mark_sae_reported(late, user=coordinator, reported_at=now - timedelta(minutes=1))
    services.mark_sae_reported(in_time, user=coordinator, reported_at=now - timedelta(minutes=1))
    record_adverse_event(early_subject, user=coordinator, **ae_data())  # no clock
    for moment in (now, now + timedelta(hours=0.5), now + timedelta(hours=6)):
        in_python = {ae.pk: ae.sae_clock(moment) for ae in AdverseEvent.objects.all()}
        for clock in SaeClock:
            in_database = set(
                AdverseEvent.objects.in_sae_clock(clock, now=moment).values_list("pk", flat=True)
            )
            assert in_database == {pk for pk, c in in_python.items() if c == clock}, (
                clock,
                moment,
            )
    states_now = [ae.sae_clock(now) for ae in AdverseEvent.objects.order_by("ae_number")]
    assert states_now == [
        SaeClock.REPORTED_LATE,
        SaeClock.OVERDUE,  # exactly 24 hours: the time is up
        SaeClock.DUE_SOON,
        SaeClock.DUE_SOON,  # exactly 6 hours left
        SaeClock.PENDING,
        SaeClock.REPORTED,
        None,
    ]


def test_mark_sae_reported(early_subject, coordinator):
    now = timezone.now()
    aware = now - timedelta(hours=30)
    ae = sae(early_subject, coordinator, aware, onset_date=days_ago(2))
    refused(
        lambda: services.mark_sae_reported(
            ae, user=coordinator, reported_at=aware - timedelta(minutes=1)
        ),
        "The report to the sponsor cannot be before the site became aware.",
    )
    refused(
        lambda: services.mark_sae_reported(
            ae, user=coordinator, reported_at=now + timedelta(hours=1)
        ),
        "The report time is in the future.",
    )
    services.mark_sae_reported(ae, user=coordinator, reported_at=now - timedelta(hours=2))
    assert ae.sae_clock() == SaeClock.REPORTED_LATE
    assert list(AdverseEvent.objects.in_sae_clock(SaeClock.REPORTED_LATE)) == [ae]
    assert not AdverseEvent.objects.in_sae_clock(SaeClock.OVERDUE).exists()
    record = ae.history.latest("history_date")
    assert record.history_change_reason == "SAE reported to the sponsor (late)"
    refused(
        lambda: services.mark_sae_reported(ae, user=coordinator, reported_at=now),
        "was already reported at",
    )
    services.mark_sae_reported(
        ae,
        user=coordinator,
        reported_at=aware + timedelta(hours=3),
        reason="Fax confirmation shows the earlier time",
    )
    assert ae.sae_clock() == SaeClock.REPORTED
    assert not AdverseEvent.objects.in_sae_clock(SaeClock.REPORTED_LATE).exists()


def test_only_a_serious_ae_is_reported(early_subject, coordinator):
    ae = record_adverse_event(early_subject, user=coordinator, **ae_data())
    refused(
        lambda: services.mark_sae_reported(ae, user=coordinator, reported_at=timezone.now()),
        "is not serious: only a serious event is reported to the sponsor within 24 hours.",
    )


def test_naive_report_time_is_taken_as_utc(early_subject, coordinator):
    ae = sae(early_subject, coordinator, timezone.now() - timedelta(hours=2))
    naive = datetime.now() - timedelta(hours=1)  # deliberately naive
    services.mark_sae_reported(ae, user=coordinator, reported_at=naive)
    assert timezone.is_aware(ae.sae_reported_at)


def test_downgrade_clears_the_report_time_into_history(early_subject, coordinator):
    ae = sae(early_subject, coordinator, timezone.now() - timedelta(hours=2))
    services.mark_sae_reported(ae, user=coordinator, reported_at=timezone.now())
    update_adverse_event(
        ae,
        user=coordinator,
        reason="Not serious: outpatient observation only",
        serious=False,
        sc_hospitalization=False,
    )
    assert ae.sae_reported_at is None
    previous = ae.history.order_by("-history_date")[1]
    assert previous.sae_reported_at is not None
