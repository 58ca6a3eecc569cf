import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from adverse_events.models import RELATED_CAUSALITIES, AdverseEvent
from core.demo import BULK_REASON
from efficacy import services as efficacy_services
from efficacy.models import TumorAssessment
from eligibility.selectors import get_assessment, valid_signature
from eligibility.services import evaluate_eligibility
from queries.sweep import run_edit_checks
from randomization.arms import DRUGS_OF_ARM
from randomization.models import Allocation
from randomization.selectors import active_list, stratification_mismatches
from randomization.services import verify_randomization_list
from subjects.models import Subject

pytestmark = pytest.mark.django_db


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
    # Tumor assessments hold the responses the services derive (recomputing changes none), and
    # each record has one '+' history record by its site's coordinator, with the bulk reason.
    assessed = Subject.objects.filter(tumor_assessments__isnull=False).distinct()
    assert assessed.exists()
    for subject in assessed:
        for assessment, point in efficacy_services._derive(subject):
            assert not efficacy_services._set_derived(assessment, point)
    records = list(TumorAssessment.history.select_related("history_user", "subject__site"))
    assert len(records) == TumorAssessment.objects.count()
    for record in records:
        assert record.history_type == "+" and record.history_change_reason == BULK_REASON
        assert record.history_user.username == f"sitestaff{record.subject.site.code}"

    assert run_edit_checks().opened == 0  # the demo's own sweep found everything already
