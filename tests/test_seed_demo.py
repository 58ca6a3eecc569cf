from datetime import UTC

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from adverse_events.models import RELATED_CAUSALITIES, ActionTaken, AdverseEvent
from core.roles import Role
from efficacy import recist
from efficacy.models import TumorAssessment
from efficacy.selectors import best_responses, progression_dates
from eligibility.selectors import get_assessment, valid_signature
from eligibility.services import NotRandomizable, evaluate_eligibility, randomization_factors
from queries.models import DataQuery, MessageKind, QueryStatus, Resolution
from queries.sweep import run_edit_checks
from randomization.arms import DRUGS_OF_ARM, Arm, StudyDrug
from randomization.models import Allocation
from randomization.selectors import active_list, stratification_mismatches
from randomization.services import verify_randomization_list
from subjects.models import Site, Subject, SubjectStatus
from survival import endpoints
from survival import selectors as survival_selectors
from survival.models import EndOfStudy, EndOfTreatment, EndOfTreatmentReason, SubsequentTherapy
from treatment import selectors as treatment_selectors
from treatment.models import Cycle, DoseLevel, IvDose, OralDosingPeriod
from treatment.schedule import VisitKind, VisitStatus

pytestmark = pytest.mark.django_db


def test_seed_demo_builds_a_study_with_every_role(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command(
        "seed_demo", "--subjects", "10", "--demo-passwords", "--password", "demo pass phrase"
    )
    out = capsys.readouterr().out
    for role in Role:
        assert f"({role.value};" in out
    assert Site.objects.count() == 3
    assert Subject.objects.count() >= 10
    assert Subject.objects.filter(consent_date__isnull=True).exists()
    assert "demo pass phrase" in (tmp_path / "demo_credentials.txt").read_text()
    with pytest.raises(CommandError, match="already has users"):
        call_command("seed_demo")
    call_command("seed_demo", "--skip-if-seeded")
    assert "already present" in capsys.readouterr().out


def test_demo_passwords_only_with_the_flag_and_printed_as_such(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    with pytest.raises(CommandError, match="add --demo-passwords"):
        call_command("seed_demo", "--password", "demo pass phrase")
    with pytest.raises(CommandError, match="too short|too common"):
        call_command("seed_demo", "--demo-passwords", "--password", "demo")
    settings.PRODUCTION = True
    with pytest.raises(CommandError, match="refused in production"):
        call_command("seed_demo", "--demo-passwords")
    settings.PRODUCTION = False

    call_command("seed_demo", "--subjects", "2")
    out = capsys.readouterr().out
    assert "no password set" in out and "changepassword" in out
    users = get_user_model().objects.all()
    assert users.count() >= 6
    assert not any(user.has_usable_password() for user in users)
    assert not (tmp_path / "demo_credentials.txt").exists()


def test_printed_demo_passwords_say_they_are_demo_passwords(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--subjects", "2", "--demo-passwords")
    out = capsys.readouterr().out
    assert "DEMO PASSWORDS, for this demonstration only" in out
    assert (tmp_path / "demo_credentials.txt").read_text().startswith("DEMO PASSWORDS")


def test_seed_demo_refuses_a_bad_size():
    with pytest.raises(CommandError, match="between 0 and 100000"):
        call_command("seed_demo", "--subjects", "-1")


def test_the_demo_opens_a_realistic_handful_of_queries_some_answered_one_confirmed(
    tmp_path, settings
):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--demo-passwords", "--password", "demo pass phrase")  # default

    queries = DataQuery.objects.system()
    assert 3 <= queries.count() < Subject.objects.count()
    assert len(set(queries.values_list("check_code", flat=True))) >= 3
    assert queries.filter(status=QueryStatus.ANSWERED).exists()
    assert queries.filter(status=QueryStatus.OPEN).exists()
    confirmed = queries.filter(resolution=Resolution.CONFIRMED_CORRECT)
    assert confirmed.count() == 1
    assert confirmed.get().thread.filter(kind=MessageKind.ANSWERED).exists()  # the site answered

    again = run_edit_checks()
    assert (again.opened, again.closed) == (0, 0)
    assert again.suppressed == 1  # the confirmed value is not raised again
    # Only the deliberate problems of the demo (the seeders' docstrings list them) are queried.
    assert set(queries.values_list("check_code", flat=True)) == DELIBERATE_PROBLEMS


# The checks the default demo's deliberate data problems raise (queries.demo and the seeders).
DELIBERATE_PROBLEMS = {
    "AE-003",  # a serious event reported late
    "AE-005",  # an immune-related event in the sorafenib arm
    "AE-006",  # an event entered twice
    "RAND-001",  # the ECOG corrected after randomization...
    "SUBJ-001",  # ...which voided the eligibility signature
    "SUBJ-005",  # a CRF in progress weeks after consent
    "REC-001",  # an investigator's response that differs from the derived one
    "TRT-003",  # a weight corrected after the bevacizumab dose was given
}


def test_the_default_demo_gives_each_arm_a_course_up_to_today(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", "--demo-passwords", "--password", "demo pass phrase")
    today = timezone.localdate()

    # Randomized over the past months, at a daytime hour at the sites (01:00-08:00 UTC), each
    # stratum's slots taken in order; two subjects today (the service), one waiting.
    allocations = list(Allocation.objects.select_related("subject", "slot"))
    past = [a for a in allocations if a.allocated_at.date() < today]
    assert len(past) >= 12 and len(allocations) - len(past) >= 1
    assert min(a.allocated_at.date() for a in past) < today.replace(year=today.year - 1)
    for allocation in past:
        assert 1 <= allocation.allocated_at.astimezone(UTC).hour < 8
        first = allocation.subject.history.filter(status=SubjectStatus.RANDOMIZED).earliest()
        assert first.status_date == allocation.allocated_at.date()
    for stratum in {a.stratum_id for a in allocations}:
        taken = sorted(
            (a.allocated_at, a.slot.sequence) for a in allocations if a.stratum_id == stratum
        )
        assert [seq for _, seq in taken] == list(range(1, len(taken) + 1))
    waiting = Subject.objects.filter(status=SubjectStatus.SCREENING, allocation__isnull=True)
    assert any(_randomizable_today(s, today) for s in waiting)

    arm_of = {a.subject_id: a.arm for a in allocations}
    for arm in Arm:
        mine = [pk for pk, a in arm_of.items() if a == arm]
        with_cycles = [pk for pk in mine if Cycle.objects.filter(subject_id=pk).count() >= 4]
        assert len(with_cycles) >= 3, arm

    # Arm A: a bevacizumab reduction and a delay, each with its reason and the AE behind it.
    reduced = IvDose.objects.filter(drug=StudyDrug.BEVACIZUMAB, reduced=True)
    assert reduced.exists()
    for dose in reduced.select_related("adverse_event", "cycle"):
        assert dose.dose_change_reason and dose.adverse_event is not None
        assert dose.adverse_event.onset_date < dose.cycle.day1_date
        assert dose.adverse_event.causalities.get(drug=dose.drug).action_taken == (
            ActionTaken.DOSE_REDUCED
        )
    assert IvDose.objects.filter(delayed=True, adverse_event__isnull=False).exists()
    # Arm B: sorafenib held, then reduced to 400 mg/day, after a hand-foot skin reaction.
    for level in (DoseLevel.HELD, DoseLevel.REDUCED_400):
        period = OralDosingPeriod.objects.select_related("adverse_event__term").get(
            dose_level=level
        )
        assert period.dose_change_reason
        assert period.adverse_event.term.term == "Palmar-plantar erythrodysesthesia syndrome"
        assert period.adverse_event.onset_date <= period.start_date

    # Responses (some confirmed) and progressions in both arms; the end of treatment after them.
    responses = set(TumorAssessment.objects.values_list("derived_response", flat=True))
    assert {recist.Response.PR, recist.Response.CR, recist.Response.PD} <= responses
    confirmed = [
        best
        for best in best_responses().values()
        if best.response in (recist.Response.CR, recist.Response.PR)
    ]
    assert confirmed
    progressed = progression_dates(arm_of)
    assert {arm_of[pk] for pk in progressed} == {Arm.A, Arm.B}
    for pk, day in progressed.items():
        assert TumorAssessment.objects.filter(subject_id=pk, assessment_date__gt=day).count() == 0
        eot = EndOfTreatment.objects.get(subject_id=pk)
        assert eot.end_reason == EndOfTreatmentReason.PROGRESSION and eot.last_dose_date < day
    assert SubsequentTherapy.objects.exists()
    assert EndOfTreatment.objects.filter(
        end_reason=EndOfTreatmentReason.TOXICITY, adverse_event__isnull=False
    ).exists()

    # Deaths: the same date in the status, the end of study and the fatal adverse event.
    died = Subject.objects.filter(status=SubjectStatus.DIED)
    assert died.count() >= 2 and {arm_of[s.pk] for s in died} == {Arm.A, Arm.B}
    for subject in died:
        assert EndOfStudy.objects.get(subject=subject).death_date == subject.status_date
        assert subject.adverse_events.get(grade=5).death_date == subject.status_date
        assert not subject.adverse_events.filter(onset_date__gt=subject.status_date).exists()

    # PFS and OS per arm: events and censored subjects in each, arm A progressing later.
    rows = survival_selectors.time_to_event()
    for parameter in (endpoints.PFS, endpoints.OS):
        for arm in Arm:
            group = [r for r in rows if r.parameter == parameter and r.arm == arm]
            assert any(r.event for r in group) and any(not r.event for r in group), (
                parameter,
                arm,
            )
    pfs = next(s for s in survival_selectors.endpoint_summaries() if s.parameter == endpoints.PFS)
    median = {estimate.arm: estimate.km.median for estimate in pfs.arms}
    assert median[Arm.B] is not None and (median[Arm.A] is None or median[Arm.A] > median[Arm.B])

    # Every randomized subject's calendar: nothing overdue (what was due was done); after an end
    # of treatment, the 30-day safety follow-up done by its contact (when its window is past).
    ended = 0
    for subject in Subject.objects.randomized_or_later().select_related("site"):
        calendar = treatment_selectors.subject_calendar(subject)
        assert not [v for v in calendar.visits if v.status == VisitStatus.OVERDUE], subject
        safety = [v for v in calendar.visits if v.kind == VisitKind.SAFETY and v.number == 30]
        if (
            safety
            and safety[0].window_end < calendar.today
            and subject.status != SubjectStatus.WITHDRAWN
        ):
            assert safety[0].status == VisitStatus.DONE, subject
            ended += 1
    assert ended >= 3


def _randomizable_today(subject, today) -> bool:
    try:
        randomization_factors(subject, today)
    except NotRandomizable:
        return False
    return True


def test_a_large_demo_written_in_bulk_keeps_the_rules_of_the_services(tmp_path, settings, capsys):
    settings.VAR_DIR = tmp_path
    call_command(
        "seed_demo",
        "--subjects",
        "60",
        "--bulk",
        "--demo-passwords",
        "--password",
        "demo pass phrase",
    )
    assert "Subjects: 60/60" in capsys.readouterr().out  # progress lines

    assert Subject.objects.count() == 60
    identifiers = Subject.objects.values_list("site__code", "sequence", "subject_identifier")
    assert all(ident == f"{code}-{seq:04d}" for code, seq, ident in identifiers)
    randomized = Subject.objects.randomized_or_later()
    assert randomized.count() > 30
    # Every randomized subject: a valid eligible signature over the data as they are, except those
    # whose ECOG the demo corrects after randomization (the stratification mismatch it shows).
    mismatched = {a.subject_id for a in stratification_mismatches()}
    assert mismatched
    for subject in randomized.select_related("allocation"):
        assessment = get_assessment(subject)
        signature = valid_signature(assessment)
        assert (signature is None) == (subject.pk in mismatched)
        assert evaluate_eligibility(
            assessment, on_date=subject.allocation.allocated_at.date()
        ).is_eligible
    # The allocations took each stratum's slots in order, from the first, as randomize() does.
    for stratum in Allocation.objects.values_list("stratum", flat=True).distinct():
        taken = Allocation.objects.filter(stratum=stratum).order_by("allocated_at", "pk")
        assert [a.slot.sequence for a in taken] == list(range(1, taken.count() + 1))
    assert verify_randomization_list(active_list()).ok
    # Adverse events numbered 1, 2, 3… per subject, each with the causality of every drug of the
    # arm (relatedness derived), and one '+' history record each.
    for subject in randomized.select_related("allocation")[:10]:
        events = subject.adverse_events.order_by("ae_number")
        assert [e.ae_number for e in events] == list(range(1, events.count() + 1))
        for event in events:
            rows = list(event.causalities.all())
            assert sorted(r.drug for r in rows) == sorted(DRUGS_OF_ARM[subject.allocation.arm])
            assert all(r.related == (r.causality in RELATED_CAUSALITIES) for r in rows)
    assert AdverseEvent.history.filter(history_type="+").count() == AdverseEvent.objects.count()
    assert AdverseEvent.objects.count() >= 20 * 60 * 0.8

    assert run_edit_checks().opened == 0  # the demo's own sweep found everything already
