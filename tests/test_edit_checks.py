"""Every edit check: it fires on the problem, and the correction closes its query by itself.

The problem is made the way it happens in a trial (a correction after randomization, a late
report, a status change) through the services; where the services refuse to make it at all
(their rules catch it at entry), the record is written as data from another path would arrive
(``audited_save``, with a reason), because the check exists for exactly that data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent, AeCausality, CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core import registry
from core.audit import audited_delete, audited_save
from core.roles import Role
from eligibility import selectors as eligibility_selectors
from eligibility import services as eligibility_services
from queries.checks import CHECKS, CHECKS_BY_CODE
from queries.models import DataQuery, QueryStatus, Resolution
from queries.sweep import run_edit_checks
from randomization import services as randomization_services
from randomization.arms import Arm
from randomization.selectors import arm_of
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .builders import (
    PASSWORD,
    days_ago,
    ensure_active_list,
    make_eligible_assessment,
    make_randomized_subject,
    make_site,
    make_subject,
    make_subject_in_arm,
    make_user,
    site_today,
)
from .builders.tamper import behind_the_audit

pytestmark = pytest.mark.django_db

CAUSALITY_A = {
    "toripalimab": {"causality": "unlikely", "action_taken": "not_changed"},
    "bevacizumab": {"causality": "probable", "action_taken": "interrupted"},
}
CAUSALITY_B = {"sorafenib": {"causality": "possible", "action_taken": "reduced"}}


@pytest.fixture(autouse=True)
def terms(db):
    load_starter_terms()


def term(name: str) -> CtcaeTerm:
    return CtcaeTerm.objects.get(term=name)


def ae_data(**overrides) -> dict:
    return {
        "term": term("Hypertension"),
        "grade": 2,
        "onset_date": site_today(),
        "ongoing": True,
        "outcome": "not_recovered",
        **overrides,
    }


def fires(code: str, record, field: str = "") -> DataQuery:
    """Run the check; its one unresolved query on ``record``/``field`` (asserted)."""
    run_edit_checks(codes=[code])
    query = DataQuery.objects.get(
        check_code=code,
        content_type=ContentType.objects.get_for_model(record),
        object_id=record.pk,
        field=field,
        status=QueryStatus.OPEN,
    )
    assert query.raised_by.username == "edc-system"
    assert query.thread.get().text == query.message
    return query


def closes(query: DataQuery) -> None:
    """After the correction, the check's next run closes the query by itself."""
    result = run_edit_checks(codes=[query.check_code])
    assert result.closed == 1, result
    query.refresh_from_db()
    assert query.status == QueryStatus.CLOSED
    assert query.resolution == Resolution.RESOLVED_BY_DATA_CHANGE
    last = query.thread.order_by("at", "pk").last()
    assert last.author.username == "edc-system"
    assert last.text.startswith("Resolved by data change")


def correct(record, *, reason="Corrected against the source", **values):
    """A correction of data the services do not change (written with a reason)."""
    for name, value in values.items():
        setattr(record, name, value)
    return audited_save(record, user=None, reason=reason, validate_only=values)


def fix_crf(subject, coordinator, **data):
    return eligibility_services.save_assessment(
        subject, user=coordinator, data=data, reason="Corrected against the source"
    )


@pytest.fixture
def randomized(site, coordinator):
    return make_randomized_subject(site, by=coordinator)


def test_every_check_is_tested():
    """A check added to the registry without its test (``test_<code>_...``, here for the checks
    of this app, in the CRF app's own test file for its checks) fails this test."""
    sources = " ".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    for check in CHECKS:
        assert f"def test_{check.code.lower().replace('-', '')}_" in sources, check.code


# --- subjects ----------------------------------------------------------------------------------


def test_subj001_randomized_without_a_valid_signature(randomized, coordinator, site):
    fix_crf(randomized, coordinator, life_expectancy_weeks=40)  # a correction voids it
    assessment = eligibility_selectors.get_assessment(randomized)
    query = fires("SUBJ-001", assessment)
    assert "must review and sign again" in query.message
    investigator = make_user("investigator", site)
    eligibility_services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    closes(query)


def test_subj002_age_at_consent_outside_18_to_75(randomized, coordinator):
    real_birthday = randomized.date_of_birth
    consent = randomized.consent_date
    subject_services.update_demographics(
        randomized,
        user=coordinator,
        reason="Typo in the year",
        date_of_birth=consent.replace(year=consent.year - 80),
    )
    query = fires("SUBJ-002", randomized, "date_of_birth")
    assert "was 80 at consent" in query.message
    subject_services.update_demographics(
        randomized, user=coordinator, reason="Back to the ID card", date_of_birth=real_birthday
    )
    closes(query)


def test_subj003_died_without_a_fatal_ae(randomized, coordinator):
    subject_services.change_status(
        randomized, SubjectStatus.DIED, user=coordinator, reason="Died", on_date=days_ago(0)
    )
    query = fires("SUBJ-003", randomized, "status")
    ae_services.record_adverse_event(
        randomized,
        user=coordinator,
        **ae_data(
            term=term("Hepatic failure"),
            grade=5,
            ongoing=False,
            end_date=days_ago(0),
            death_date=days_ago(0),
            outcome="fatal",
            serious=True,
            sc_death=True,
            site_aware_at=timezone.now() - timedelta(minutes=5),
            causality=_causality_of(randomized),
        ),
    )
    closes(query)


def test_subj004_date_of_death_before_randomization(site, coordinator):
    subject = make_subject(
        site, by=coordinator, screening_date=days_ago(10), consent_date=days_ago(10)
    )
    subject = _randomize(subject, coordinator)
    subject_services.change_status(
        subject, SubjectStatus.DIED, user=coordinator, reason="Died", on_date=days_ago(0)
    )
    # The service refuses a death before randomization; an import from the paper CRF did not.
    correct(Subject.objects.get(pk=subject.pk), status_date=days_ago(5), reason="Paper CRF")
    query = fires("SUBJ-004", subject, "status_date")
    assert f"({days_ago(5):%Y-%m-%d}) is before randomization" in query.message
    correct(Subject.objects.get(pk=subject.pk), status_date=days_ago(0))
    closes(query)


def test_subj005_still_in_screening_long_after_consent(site, coordinator):
    subject = make_subject(
        site, by=coordinator, screening_date=days_ago(40), consent_date=days_ago(40)
    )
    query = fires("SUBJ-005", subject, "status")
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Did not come back",
        on_date=days_ago(0),
    )
    closes(query)


def test_subj005_honours_the_setting(site, coordinator, settings):
    make_subject(site, by=coordinator, screening_date=days_ago(40), consent_date=days_ago(40))
    settings.EDIT_CHECK_SETTINGS = {"screening_max_days": 60}
    assert run_edit_checks(codes=["SUBJ-005"]).opened == 0


def test_subj005_counts_the_days_to_the_sites_own_today():
    """Day 29 after consent is late at a site in its own calendar: at UTC+14 (a day ahead of
    UTC from 10:00 UTC) and at UTC-11 (a day behind until 11:00 UTC) alike, whatever the hour."""
    from core.edit_checks import Scope

    now = timezone.now()
    subjects = {}
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        site = make_site(time_zone=zone)
        staff = make_user(Role.SITE_STAFF, site)
        for late, days in ((False, 28), (True, 29)):
            consented = days_ago(days, site)
            subjects[zone, late] = make_subject(
                site, by=staff, screening_date=consented, consent_date=consented
            )
    flagged = {v.subject_id for v in CHECKS_BY_CODE["SUBJ-005"].find(Scope(now=now))}
    assert flagged == {s.pk for (_, late), s in subjects.items() if late}


def test_subj006_status_date_before_the_previous_one(site, coordinator):
    subject = make_subject(
        site, by=coordinator, screening_date=days_ago(10), consent_date=days_ago(10)
    )
    subject = _randomize(subject, coordinator)  # randomized today
    subject_services.change_status(
        subject, SubjectStatus.WITHDRAWN, user=coordinator, reason="Withdrew", on_date=days_ago(0)
    )
    # The service refuses a date before the previous status's; an import did not.
    correct(Subject.objects.get(pk=subject.pk), status_date=days_ago(3), reason="Paper CRF")
    query = fires("SUBJ-006", subject, "status_date")
    correct(Subject.objects.get(pk=subject.pk), status_date=days_ago(0))
    closes(query)


# --- eligibility at randomization ------------------------------------------------------------


def test_elig001_pregnancy_test_more_than_7_days_before_randomization(site, coordinator):
    subject = _randomized_woman(site, coordinator)  # pregnancy test 6 days before: in time
    assessment = fix_crf(subject, coordinator, pregnancy_test_date=days_ago(9))
    query = fires("ELIG-001", assessment, "pregnancy_test_date")
    fix_crf(subject, coordinator, pregnancy_test_date=days_ago(6))
    closes(query)


def test_elig002_planned_randomization_far_after_the_crf(site, coordinator):
    subject = make_subject(site, by=coordinator)
    assessment = make_eligible_assessment(
        subject, by=coordinator, sign=False, planned_randomization_date=days_ago(-20)
    )
    # Saved five weeks ago (the date is 20 days ahead of today: 55 days after the save).
    behind_the_audit(type(assessment)).filter(pk=assessment.pk).update(
        updated=timezone.now() - timedelta(days=35)
    )
    query = fires("ELIG-002", assessment, "planned_randomization_date")
    fix_crf(subject, coordinator, planned_randomization_date=days_ago(-10))  # saved today
    closes(query)


def test_elig002_counts_from_the_day_the_crf_was_saved_at_the_site(db):
    from core.edit_checks import edit_check_settings

    shanghai = make_site("303", time_zone="Asia/Shanghai")
    staff = make_user(Role.SITE_STAFF, shanghai)
    subject = make_subject(shanghai, by=staff)
    assessment = make_eligible_assessment(subject, by=staff, sign=False)
    days = edit_check_settings()["planned_randomization_max_days"]
    # Saved at 04:00 on 1 November in Shanghai (20:00 UTC on 31 October), planned the last day
    # allowed: no query (counted from UTC's date, one day too many).
    crf = behind_the_audit(type(assessment)).filter(pk=assessment.pk)
    saved_on = date(2026, 11, 1)
    crf.update(
        updated=datetime(2026, 10, 31, 20, 0, tzinfo=UTC),
        planned_randomization_date=saved_on + timedelta(days=days),
    )
    run_edit_checks(codes=["ELIG-002"])
    assert not DataQuery.objects.filter(check_code="ELIG-002").exists()
    crf.update(planned_randomization_date=saved_on + timedelta(days=days + 1))
    query = fires("ELIG-002", assessment, "planned_randomization_date")
    assert "after the CRF was saved (2026-11-01)" in query.message


def test_elig003_labs_older_than_the_window_at_randomization(randomized, coordinator):
    from eligibility import settings as elig_settings

    window = elig_settings.lab_max_age_days()
    good = eligibility_selectors.get_assessment(randomized).lab_date
    assessment = fix_crf(randomized, coordinator, lab_date=days_ago(window + 3))
    query = fires("ELIG-003", assessment, "lab_date")
    fix_crf(randomized, coordinator, lab_date=good)
    closes(query)


def test_rand001_stratification_differs_from_the_crf(randomized, coordinator):
    used = randomized.allocation.ecog
    assessment = fix_crf(randomized, coordinator, ecog=1 - used)
    query = fires("RAND-001", assessment, "ecog")
    assert f"ECOG {used}; the CRF now says {1 - used}" in query.message
    fix_crf(randomized, coordinator, ecog=used)
    closes(query)


# --- adverse events ------------------------------------------------------------------------------


def test_ae001_severe_ae_without_causality_for_every_drug(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(3))
    ae = ae_services.record_adverse_event(
        subject, user=coordinator, **ae_data(grade=3, onset_date=days_ago(2))
    )  # before randomization: no study drug yet
    subject = _randomize(subject, coordinator)
    query = fires("AE-001", ae)
    assert "without the causality to" in query.message
    ae_services.update_adverse_event(
        ae, user=coordinator, reason="Causality assessed", causality=_causality_of(subject)
    )
    closes(query)


def test_ae002_causality_for_a_drug_not_in_the_arm(site, coordinator):
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    ae = ae_services.record_adverse_event(
        subject, user=coordinator, **ae_data(causality=CAUSALITY_B)
    )
    wrong = audited_save(
        AeCausality(
            adverse_event=ae, drug="toripalimab", causality="possible", action_taken="not_changed"
        ),
        user=None,
        reason="Imported from the paper CRF",
    )
    query = fires("AE-002", wrong, "drug")
    assert "Toripalimab, which the subject does not take" in query.message
    audited_delete(wrong, user=None, reason="Entered on the wrong subject")
    closes(query)


def test_ae003_sae_not_reported_within_24_hours(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(3))
    aware = timezone.now() - timedelta(hours=30)
    ae = ae_services.record_adverse_event(
        subject,
        user=coordinator,
        **ae_data(
            onset_date=days_ago(2),
            serious=True,
            sc_hospitalization=True,
            site_aware_at=aware,
        ),
    )
    query = fires("AE-003", ae, "sae_reported_at")
    ae_services.mark_sae_reported(ae, user=coordinator, reported_at=aware + timedelta(hours=3))
    closes(query)


def test_ae004_grade_5_ae_while_the_subject_is_alive(randomized, coordinator):
    ae = audited_save(
        AdverseEvent(
            subject=randomized,
            ae_number=1,
            term=term("Death NOS"),
            grade=5,
            onset_date=days_ago(0),
            end_date=days_ago(0),
            death_date=days_ago(0),
            outcome="fatal",
            serious=True,
            sc_death=True,
            site_aware_at=timezone.now() - timedelta(minutes=5),
        ),
        user=None,
        reason="Imported from the safety database",
    )
    query = fires("AE-004", ae, "grade")
    subject_services.change_status(
        randomized, SubjectStatus.DIED, user=coordinator, reason="Died", on_date=days_ago(0)
    )
    closes(query)


def test_ae005_immune_related_ae_in_the_sorafenib_arm(site, coordinator):
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    ae = ae_services.record_adverse_event(
        subject, user=coordinator, **ae_data(immune_related=True, causality=CAUSALITY_B)
    )
    query = fires("AE-005", ae, "immune_related")
    ae_services.update_adverse_event(
        ae, user=coordinator, reason="Not immune-related: ticked by mistake", immune_related=False
    )
    closes(query)


def test_ae006_same_term_same_onset_twice(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(5))
    ae_services.record_adverse_event(subject, user=coordinator, **ae_data(onset_date=days_ago(2)))
    second = ae_services.record_adverse_event(
        subject, user=coordinator, **ae_data(onset_date=days_ago(2), grade=1)
    )
    query = fires("AE-006", second, "term")
    ae_services.update_adverse_event(
        second, user=coordinator, reason="Onset misread", onset_date=days_ago(1)
    )
    closes(query)


def test_ae007_ongoing_after_the_study_ended(site, coordinator):
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    ae = ae_services.record_adverse_event(
        subject, user=coordinator, **ae_data(causality=CAUSALITY_B)
    )
    subject_services.change_status(
        subject,
        SubjectStatus.COMPLETED,
        user=coordinator,
        reason="End of study",
        on_date=days_ago(0),
    )
    query = fires("AE-007", ae, "ongoing")
    ae_services.update_adverse_event(
        ae,
        user=coordinator,
        reason="Resolved at the end-of-study visit",
        ongoing=False,
        end_date=days_ago(0),
        outcome="recovered",
    )
    closes(query)


# --- helpers -------------------------------------------------------------------------------------


def _causality_of(subject) -> dict:
    return CAUSALITY_A if arm_of(subject) == Arm.A else CAUSALITY_B


def _randomize(subject, coordinator, **crf):
    ensure_active_list()
    make_eligible_assessment(subject, by=coordinator, **crf)
    randomization_services.randomize(subject, coordinator)
    return Subject.objects.get(pk=subject.pk)


def _randomized_woman(site, coordinator):
    return _randomize(
        make_subject(site, by=coordinator, sex="F"),
        coordinator,
        childbearing_potential=True,
        pregnancy_test_date=days_ago(6),
        pregnancy_test_result="negative",
        contraception_agreed=True,
    )


def test_the_registry_is_every_apps_checks_in_layer_order():
    assert tuple(registry.edit_checks()) == CHECKS
    assert len(CHECKS_BY_CODE) == len(CHECKS)


def test_each_check_is_declared_by_the_app_whose_data_it_reads_with_its_code():
    def codes(label):
        return [check.code for check in apps.get_app_config(label).contributions().edit_checks]

    assert codes("subjects") == ["SUBJ-005", "SUBJ-006"]
    assert codes("eligibility") == ["ELIG-002"]
    assert codes("randomization") == [
        "SUBJ-001",
        "SUBJ-002",
        "SUBJ-004",
        "ELIG-001",
        "ELIG-003",
        "RAND-001",
    ]
    assert codes("adverse_events") == [
        "SUBJ-003",
        "AE-001",
        "AE-002",
        "AE-003",
        "AE-004",
        "AE-005",
        "AE-006",
        "AE-007",
    ]
