"""The default demo study (``seed_demo`` as the README runs it): what it holds, and no direct
identifier in any export for the sponsor's people (issue 20).

The demo is seeded once for the module (``demo``), in a transaction rolled back at the module's
end: the tests only read it, and what a test writes (a sweep, a deletion) goes with the test's
own transaction. A test that needs another seed (flags, sizes, an empty database) is in
``test_seed_demo``.

No direct identifier: one subject registered in error is deleted (so the deletions feed and the
history have one), and every export is fetched as the demo's sponsor and as its statistician:
every endpoint of the API's router (each JSON page and the CSV: the forms, the audit trail, the
deletions and the reports), the ODM snapshot and archival file, and every Dataset-JSON dataset;
and the operator's ODM files (``export_odm``). None may hold any direct identifier any subject
has had (now or in the history): initials, date of birth (in any spelling an export might write)
and screening number. The same search finds them in what a data manager reads, so a leak would
not go unseen.

Subject identifiers (101-0009, USUBJID) are pseudonyms, not direct identifiers: they stay. The
demo's initials are two letters, a few of them also a name or code the exports write for every
subject (AE, DM, DS: ``exported_words``), which no search can tell apart; all the others are
searched for as a word anywhere (values, labels, reasons).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, date
from io import StringIO
from types import SimpleNamespace
from xml.etree import ElementTree

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from adverse_events.models import ActionTaken
from core.roles import Role
from efficacy import recist
from efficacy.models import TumorAssessment
from efficacy.selectors import best_responses, progression_dates
from eligibility.services import NotRandomizable, randomization_factors
from exports import dataset_json, records
from exports.urls import router
from monitoring import services as monitoring
from monitoring.models import CasebookSignature, CasebookState, LockLevel, RecordState
from monitoring.models import SourceDataVerification as Sdv
from queries.models import DataQuery, MessageKind, QueryStatus, Resolution
from queries.sweep import run_edit_checks
from randomization.arms import Arm, StudyDrug
from randomization.models import Allocation
from subjects import services as subject_services
from subjects.models import Site, Subject, SubjectStatus
from survival import endpoints
from survival import selectors as survival_selectors
from survival.models import EndOfStudy, EndOfTreatment, EndOfTreatmentReason, SubsequentTherapy
from treatment import selectors as treatment_selectors
from treatment.models import Cycle, DoseLevel, IvDose, OralDosingPeriod
from treatment.schedule import VisitKind, VisitStatus

from .builders.worlds import built_once

pytestmark = pytest.mark.django_db

LONG_AGO = "2000-01-01T00:00:00Z"


def spellings(iso: str) -> set[str]:
    """A date as an export could write it (ISO, SAS-style, day/month orders, words)."""
    day = date.fromisoformat(iso)
    return {
        day.isoformat(),
        day.strftime("%Y%m%d"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%m/%d/%Y"),
        day.strftime("%Y/%m/%d"),
        day.strftime("%d%b%Y").upper(),
        day.strftime("%B %d, %Y"),
        day.strftime("%d %B %Y"),
    }


def fetch(client, path, **query) -> str:
    """The body of a GET (a refusal's too: an endpoint that is not the user's says so)."""
    response = client.get(path, query)
    assert response.status_code in (200, 403, 404), (path, query, response.status_code)
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def api_pages(client, path, **query) -> list[str]:
    """Every page of a JSON list (its next links), as text."""
    pages = [fetch(client, path, **query)]
    while True:
        body = json.loads(pages[-1])
        if not isinstance(body, dict) or not body.get("next"):
            return pages
        pages.append(fetch(client, body["next"]))


def every_export(username: str) -> dict[str, str]:
    """Export name -> its text, everything the user can read through the API."""
    user = get_user_model().objects.get(username=username)
    client = APIClient()
    client.force_authenticate(user)
    found = {}
    for prefix, _, _ in router.registry:
        query = {"since": LONG_AGO} if prefix == "deletions" else {}
        for n, page in enumerate(api_pages(client, f"/api/v1/{prefix}/", **query)):
            found[f"{prefix} page {n + 1}"] = page
        found[f"{prefix}.csv"] = fetch(client, f"/api/v1/{prefix}/", format="csv", **query)
    found["odm"] = fetch(client, "/api/v1/exports/odm/")
    found["odm archival"] = fetch(client, "/api/v1/exports/odm/", archival="1")
    for dataset in dataset_json.datasets():
        path = f"/api/v1/exports/dataset-json/{dataset.name.lower()}/"
        found[f"dataset-json {dataset.name}"] = fetch(client, path)
    return found


def exported_words() -> set[str]:
    """Names and codes the exports write whoever the subject: dataset and form codes, and the
    codes of every code list."""
    words = {dataset.name for dataset in dataset_json.datasets()}
    for form in records.export_forms():
        words.add(form.code)
        for item in (*form.items, *(i for group in form.children for i in group.items)):
            words.update(code for code, _ in item.codelist)
    return words


class Identifiers:
    """Every direct identifier the demo's subjects have had (the history's values: a deleted
    subject's and changed values too), and a search for them in a text."""

    def __init__(self):
        values = Subject.history.values_list(
            "initials", "date_of_birth", "screening_number"
        ).distinct()
        self.initials = {initials for initials, _, _ in values if initials}
        self.births = {born.isoformat() for _, born, _ in values if born}
        self.dates = {spelling for born in self.births for spelling in spellings(born)}
        self.numbers = {number for _, _, number in values if number}
        subjects = Subject.history.values("id").distinct().count()
        assert subjects >= 20 and len(self.numbers) == subjects  # one number each
        assert len(self.births) >= subjects - 2 and len(self.initials) >= subjects - 5
        self.words = self.initials - exported_words()
        assert len(self.words) >= len(self.initials) - 5  # the search is not vacuous
        self._word = re.compile(
            r"(?<![A-Za-z0-9])(" + "|".join(sorted(self.words)) + r")(?![A-Za-z0-9])"
        )

    def in_text(self, text: str) -> set[str]:
        found = {value for value in self.numbers | self.dates if value in text}
        return found | set(self._word.findall(text))


PASSWORD = "demo pass phrase"


@pytest.fixture(scope="module")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The default demo with demo passwords, seeded once for the module in a transaction rolled
    back after its last test (each test's own transaction is a savepoint inside it): what the
    command printed, and the folder of its files (``VAR_DIR``)."""
    folder = tmp_path_factory.mktemp("demo")
    out = StringIO()
    with (
        built_once(django_db_blocker),
        override_settings(VAR_DIR=folder),
    ):
        call_command("seed_demo", "--demo-passwords", "--password", PASSWORD, stdout=out)
        yield SimpleNamespace(out=out.getvalue(), folder=folder)


def delete_a_subject_registered_in_error() -> None:
    in_error = Subject.objects.filter(
        status=SubjectStatus.SCREENING, consent_date__isnull=True
    ).first()
    subject_services.delete_subject(
        in_error, user=in_error.history.earliest().history_user, reason="Registered in error."
    )


def operator_files(folder) -> dict[str, str]:
    """The ODM files ``export_odm`` writes by default (all sites, as an operator)."""
    found = {}
    for name, options in (("odm file", ()), ("odm archival file", ("--archival",))):
        path = folder / f"{name}.xml"
        call_command("export_odm", "-o", str(path), *options, stderr=StringIO())
        found[name] = path.read_text()
    return found


def test_no_export_holds_a_direct_identifier_for_the_sponsor_or_the_statistician(demo, tmp_path):
    delete_a_subject_registered_in_error()
    identifiers = Identifiers()
    subjects = set(Subject.objects.values_list("subject_identifier", flat=True))

    # The search finds every kind of identifier in what a data manager reads.
    seen = every_export("datamanager")
    for name in ("subjects page 1", "subjects.csv", "audit-trail.csv", "odm", "odm archival"):
        found = identifiers.in_text(seen[name])
        assert found & identifiers.numbers and found & identifiers.dates, name
        assert found & identifiers.words, name
    trail = "".join(text for name, text in seen.items() if name.startswith("audit-trail page"))
    everything = identifiers.numbers | identifiers.births | identifiers.words
    assert identifiers.in_text(trail) >= everything  # the deleted subject's too

    for username in ("sponsor", "statistician"):
        exports = every_export(username)
        assert all(s in exports["subjects.csv"] for s in subjects)  # pseudonyms stay
        ElementTree.fromstring(exports["odm archival"])  # whole files
        for name in exports:
            if name.startswith("dataset-json"):
                json.loads(exports[name])
        leaks = {}
        for name, text in exports.items():
            if found := identifiers.in_text(text):
                leaks[name] = sorted(found)
        assert not leaks, f"{username} reads direct identifiers: {leaks}"

    for name, text in operator_files(tmp_path).items():
        assert not identifiers.in_text(text), f"{name}: {sorted(identifiers.in_text(text))}"


def test_seed_demo_builds_a_study_with_every_role(demo, capsys):
    for role in Role:
        assert f"({role.value};" in demo.out
    assert Site.objects.count() == 3
    assert Subject.objects.count() >= 20
    assert Subject.objects.filter(consent_date__isnull=True).exists()
    assert PASSWORD in (demo.folder / "demo_credentials.txt").read_text()
    with pytest.raises(CommandError, match="already has users"):
        call_command("seed_demo")
    call_command("seed_demo", "--skip-if-seeded")
    assert "already present" in capsys.readouterr().out


def test_the_demo_opens_a_realistic_handful_of_queries_some_answered_one_confirmed(demo):
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


def test_the_default_demo_gives_each_arm_a_course_up_to_today(demo):
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


def test_the_demo_shows_verified_frozen_and_locked_records_and_a_signed_casebook(demo):
    assert "Monitoring: " in demo.out
    assert Sdv.objects.filter(verified=True).count() >= 4
    signed = CasebookSignature.objects.get(void=False)
    assert monitoring.signature_is_valid(signed)
    assert CasebookState.objects.get(subject=signed.subject).state == LockLevel.LOCKED
    assert CasebookState.objects.filter(state=LockLevel.FROZEN).exists()
    assert RecordState.objects.exclude(state=LockLevel.OPEN).exists()
    # The sweep leaves the locked casebook alone, and a second sweep changes nothing.
    again = run_edit_checks()
    assert (again.opened, again.closed) == (0, 0)
