"""randomize(): the rules, the allocation, refusals with their messages; arm_of; mismatches;
the balance report."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import AccessDenied, DomainError
from core.roles import Role
from core.site_time import date_at
from eligibility import selectors as eligibility_selectors
from eligibility import services as eligibility_services
from randomization import listgen, selectors, services
from randomization.arms import Arm
from randomization.models import Allocation, Slot
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .builders import (
    ensure_active_list,
    make_eligible_assessment,
    make_eligible_subject,
    make_randomized_subject,
    make_subject,
    make_user,
    site_today,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rlist(db):
    return ensure_active_list()


def expected_slot(rlist, stratum_number, sequence):
    return Slot.objects.get(rlist=rlist, stratum__number=stratum_number, sequence=sequence)


def test_randomize_allocates_first_slot_of_the_stratum(rlist, site, coordinator):
    subject = make_eligible_subject(
        site, by=coordinator, ecog=1, macrovascular_invasion=True, prior_locoregional_therapy=False
    )
    before = timezone.now()
    allocation = services.randomize(subject, coordinator)
    # Stratum: MVI/EHS present, ECOG 1, no prior LRT = S7.
    slot = expected_slot(rlist, 7, 1)
    assert allocation.slot == slot and allocation.stratum.number == 7
    assert allocation.randomization_number == "R7-0001"
    assert allocation.arm == slot.arm
    assert allocation.allocated_by == coordinator
    assert allocation.allocated_at >= before and allocation.allocated_at.tzinfo is not None
    used = (
        allocation.macrovascular_or_extrahepatic,
        allocation.ecog,
        allocation.prior_locoregional_therapy,
    )
    assert used == (True, 1, False)
    subject.refresh_from_db()
    assert subject.status == SubjectStatus.RANDOMIZED
    # the randomization date: the site's date of the allocation (Shanghai, not UTC)
    assert subject.status_date == date_at(allocation.allocated_at, site)
    assert subject.allocation == allocation
    # Audit trail: the allocation's creation and the subject's status change with a reason.
    assert allocation.history.get().history_user == coordinator
    change = subject.history.first()
    assert change.status == SubjectStatus.RANDOMIZED
    assert change.history_change_reason == f"Randomized: number R7-0001, arm {slot.arm}"


def test_next_subjects_take_consecutive_slots_of_their_stratum(rlist, site, coordinator):
    allocations = [
        services.randomize(make_eligible_subject(site, by=coordinator), coordinator)
        for _ in range(5)
    ]
    # Default factory CRF: MVI/EHS absent, ECOG 0, prior LRT yes = S2.
    assert [a.randomization_number for a in allocations] == [f"R2-000{i}" for i in range(1, 6)]
    assert [a.arm for a in allocations] == [expected_slot(rlist, 2, i).arm for i in range(1, 6)]
    other = services.randomize(
        make_eligible_subject(site, by=coordinator, extrahepatic_spread=True), coordinator
    )
    assert other.randomization_number == "R6-0001"


def test_investigator_can_randomize(rlist, site, investigator):
    subject = make_eligible_subject(site)
    assert services.randomize(subject, investigator).allocated_by == investigator


def test_arm_of(rlist, site, coordinator):
    subject = make_eligible_subject(site, by=coordinator)
    assert selectors.arm_of(subject) is None
    allocation = services.randomize(subject, coordinator)
    arm = selectors.arm_of(subject)
    assert isinstance(arm, Arm) and arm == allocation.arm


def test_randomized_subject_factory(site, coordinator):
    subject = make_randomized_subject(site, by=coordinator, ecog=1)
    assert subject.status == SubjectStatus.RANDOMIZED
    assert subject.allocation.ecog == 1
    assert selectors.arm_of(subject) in (Arm.A, Arm.B)


# --- Refusals ------------------------------------------------------------------------------------


def test_refused_without_active_list(site, coordinator):
    subject = make_eligible_subject(site, by=coordinator)
    with pytest.raises(services.NoActiveList, match="no active randomization list"):
        services.randomize(subject, coordinator)
    assert not Allocation.objects.exists()


def test_refused_when_already_randomized(rlist, site, coordinator):
    subject = make_randomized_subject(site, by=coordinator)
    number = subject.allocation.randomization_number
    with pytest.raises(services.AlreadyRandomized, match=f"already randomized.*{number}"):
        services.randomize(subject, coordinator)
    assert Allocation.objects.count() == 1


def test_refused_for_user_of_another_site_and_non_data_entry_roles(
    rlist, site, other_coordinator, data_manager
):
    subject = make_eligible_subject(site)
    with pytest.raises(AccessDenied, match="site 101"):
        services.randomize(subject, other_coordinator)
    monitor = make_user(Role.MONITOR, site)
    with pytest.raises(AccessDenied):
        services.randomize(subject, monitor)
    with pytest.raises(AccessDenied):
        services.randomize(subject, data_manager)
    assert not Allocation.objects.exists()


def test_refused_without_consent(rlist, site, coordinator):
    subject = make_subject(site, by=coordinator, consented=False)
    with pytest.raises(subject_services.ConsentRequired, match="no informed consent"):
        services.randomize(subject, coordinator)


def test_refused_without_signed_eligible_assessment(rlist, site, coordinator):
    subject = make_subject(site, by=coordinator)
    with pytest.raises(
        services.NotEligibleForRandomization, match="cannot be randomized.*no eligibility"
    ):
        services.randomize(subject, coordinator)
    make_eligible_assessment(subject, by=coordinator, sign=False)
    with pytest.raises(services.NotEligibleForRandomization, match="not signed off"):
        services.randomize(subject, coordinator)
    assert Subject.objects.get(pk=subject.pk).status == SubjectStatus.SCREENING


def test_refused_when_a_window_no_longer_holds_today(rlist, site, coordinator):
    # Signed eligible for a randomization 10 days ago; labs are valid for 14 days before
    # randomization, and are 16 days old today.
    today = site_today()
    subject = make_subject(site, by=coordinator, consent_date=today - timedelta(days=12))
    make_eligible_assessment(
        subject,
        by=coordinator,
        planned_randomization_date=today - timedelta(days=10),
        lab_date=today - timedelta(days=16),
    )
    with pytest.raises(services.NotEligibleForRandomization, match="IN09"):
        services.randomize(subject, coordinator)


def test_refused_when_data_changed_after_signature(rlist, site, coordinator):
    subject = make_eligible_subject(site, by=coordinator)
    assessment = eligibility_selectors.get_assessment(subject)
    eligibility_services.save_assessment(
        subject, user=coordinator, data={"ecog": 1}, reason="Corrected ECOG"
    )
    assert assessment.signatures.filter(void=True).exists()
    with pytest.raises(services.NotEligibleForRandomization, match="not signed off"):
        services.randomize(subject, coordinator)


def test_refused_for_screen_failed_subject(rlist, site, coordinator):
    subject = make_subject(site, by=coordinator)
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Screen failure",
        on_date=site_today(),
    )
    with pytest.raises(services.NotEligibleForRandomization, match="screen failed"):
        services.randomize(subject, coordinator)


def test_refused_when_stratum_is_exhausted(site, coordinator):
    ensure_active_list(slots_per_stratum=4)
    for _ in range(4):
        make_randomized_subject(site, by=coordinator)
    fifth = make_eligible_subject(site, by=coordinator)
    with pytest.raises(services.StratumExhausted, match="Stratum S2 .* no free slot left"):
        services.randomize(fifth, coordinator)
    assert Subject.objects.get(pk=fifth.pk).status == SubjectStatus.SCREENING
    # Another stratum still has slots.
    other = make_eligible_subject(site, by=coordinator, ecog=1)
    assert services.randomize(other, coordinator).randomization_number == "R4-0001"


def test_every_refusal_is_a_domain_error():
    for error in (
        services.NoActiveList,
        services.AlreadyRandomized,
        services.NotEligibleForRandomization,
        services.StratumExhausted,
        services.ActiveListExists,
        listgen.InvalidListParameters,
    ):
        assert issubclass(error, DomainError)


def test_failure_after_taking_a_slot_leaves_it_free(rlist, site, coordinator, monkeypatch):
    subject = make_eligible_subject(site, by=coordinator)

    def fail(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(subject_services, "mark_randomized", fail)
    with pytest.raises(RuntimeError):
        services.randomize(subject, coordinator)
    assert not Allocation.objects.exists()
    assert Allocation.history.count() == 0
    assert Subject.objects.get(pk=subject.pk).status == SubjectStatus.SCREENING
    monkeypatch.undo()
    assert services.randomize(subject, coordinator).randomization_number == "R2-0001"


# --- Stratification mismatches -------------------------------------------------------------------


def test_mismatch_flagged_when_crf_changes_after_randomization(rlist, site, coordinator):
    same = make_randomized_subject(site, by=coordinator)
    changed = make_randomized_subject(site, by=coordinator)
    eligibility_services.save_assessment(
        changed,
        user=coordinator,
        data={"ecog": 1, "extrahepatic_spread": True},
        reason="Source data verification",
    )
    found = selectors.stratification_mismatches()
    assert [a.subject for a in found] == [changed]
    assert found[0].mismatch == (
        "Macrovascular invasion and/or extrahepatic spread: absent at randomization, present "
        "now; ECOG performance status: 0 at randomization, 1 now."
    )
    assert found[0].current_factors.ecog == 1
    # The allocation stands.
    changed.refresh_from_db()
    assert changed.allocation.ecog == 0 and changed.status == SubjectStatus.RANDOMIZED
    assert selectors.stratification_mismatches(Allocation.objects.filter(subject=same)) == []


@pytest.mark.parametrize(
    "change",
    [
        {"ecog": 1},
        {"ecog": 2},  # not a stratum's ECOG: the factors cannot be read
        {"ecog": None},  # missing now
        {"macrovascular_invasion": True},
        {"extrahepatic_spread": True},
        {"macrovascular_invasion": True, "extrahepatic_spread": True},
        {"prior_locoregional_therapy": False},
        {"prior_locoregional_therapy": None},
        {"life_expectancy_weeks": 20},  # not a factor: no mismatch
    ],
    ids=repr,
)
def test_the_database_picks_every_allocation_the_crf_now_contradicts(
    rlist, site, coordinator, change
):
    """The allocations the database picks include every one whose factors Python finds
    changed (or unreadable), whatever changed on the CRF after randomization."""
    from eligibility.models import EligibilityAssessment

    from .builders.tamper import behind_the_audit

    make_randomized_subject(site, by=coordinator)
    changed = make_randomized_subject(site, by=coordinator)
    behind_the_audit(EligibilityAssessment).filter(subject=changed).update(**change)
    every = Allocation.objects.select_related("subject__site", "subject__eligibility")
    expected = [a.subject for a in every.order_by("pk") if selectors.crf_mismatch(a)]
    found = selectors.stratification_mismatches(Allocation.objects.order_by("pk"))
    assert [a.subject for a in found] == expected
    assert bool(expected) == (change.keys() != {"life_expectancy_weeks"})


# --- Balance report ------------------------------------------------------------------------------


def test_balance_report_counts_per_stratum_site_and_factor(site, other_site, coordinator):
    ensure_active_list(slots_per_stratum=24)
    other_staff = make_user(Role.SITE_STAFF, other_site)
    subjects = [make_randomized_subject(site, by=coordinator) for _ in range(3)]
    subjects.append(make_randomized_subject(other_site, by=other_staff, ecog=1))
    statistician = make_user(Role.STATISTICIAN)
    report = selectors.balance_report(statistician)
    arms = [s.allocation.arm for s in subjects]
    assert report["totals"] == {"A": arms.count("A"), "B": arms.count("B"), "total": 4}
    s2 = next(r for r in report["strata"] if r["stratum"] == "S2")
    assert s2["A"] + s2["B"] == 3 and s2["slots_left"] == 21 and s2["slots_total"] == 24
    assert not s2["low"]
    sites = {r["site"]: r["total"] for r in report["sites"]}
    assert sites == {"101": 3, "202": 1}
    ecog = {r["level"]: r["total"] for r in report["factors"] if r["factor"] == "ecog"}
    assert ecog == {"0": 3, "1": 1}
    assert report["mismatches"] == []
    assert "seed" not in str(report) and "block" not in str(report)


def test_balance_report_warns_when_a_stratum_runs_low(site, coordinator, settings):
    settings.RANDOMIZATION_LOW_SLOTS_WARNING = 3
    ensure_active_list(slots_per_stratum=4)
    make_randomized_subject(site, by=coordinator)
    report = selectors.balance_report(make_user(Role.DATA_MANAGER))
    assert report["low_slots_threshold"] == 3
    assert report["warnings"] == [
        "Stratum S2 (MVI/EHS absent · ECOG 0 · prior LRT: yes) has 3 free slots left "
        "(warning at 3 or fewer)."
    ]


def test_balance_report_for_monitor_is_scoped_and_site_users_are_refused(
    site, other_site, coordinator
):
    ensure_active_list()
    make_randomized_subject(site, by=coordinator)
    make_randomized_subject(other_site)
    monitor = make_user(Role.MONITOR, other_site)
    report = selectors.balance_report(monitor)
    assert report["totals"]["total"] == 1 and report["scope"] == "your sites"
    assert [r["site"] for r in report["sites"]] == ["202"]
    assert "slots_left" not in report["strata"][0] and not report["slots_shown"]
    with pytest.raises(AccessDenied, match="not for site users"):
        selectors.balance_report(coordinator)


def test_balance_report_without_list(db):
    report = selectors.balance_report(make_user(Role.SPONSOR))
    assert report["active_list"] is None
    assert report["warnings"][0].startswith("There is no active randomization list")
