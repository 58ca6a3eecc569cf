"""CDISC Dataset-JSON v1.1: every dataset (the SDTM-like DM, DS, IE, AE, SUPPAE and one per CRF
and child group) validates against the official schemas, as JSON and as NDJSON; the row counts
match the database; USUBJIDs, ISO 8601 dates, Y/N flags and CDISC terms; no direct identifier
for anyone; scoped per user; the API endpoint and the ``export_datasets`` command.

The official NDJSON schema (``dataset-ndjson-schema.json``, UTF-16) has dangling references at
its top level (``#/$defs/Column``, ``#/$defs/SourceSystem``: CDISC's DataExchange-DatasetJson
issue #35); its authors validate an NDJSON metadata line against ``$defs/DatasetMetadata``,
which is what these tests do, and the line (with empty rows) against the JSON schema too.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import jsonschema
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import DateTimeField, DecimalField
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core.export_spec import ExportForm, model_items
from core.roles import Role
from eligibility import services as eligibility_services
from eligibility.models import EligibilityAssessment
from exports import dataset_json, odm, records, sdtm
from exports.odm import fragments as odm_fragments
from exports.sdtm import sqljson
from randomization.arms import Arm
from randomization.models import Allocation
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus
from treatment.models import DoseLevel

from . import sdtm_oracle
from .builders import (
    PASSWORD,
    days_ago,
    make_eligible_assessment,
    make_site,
    make_subject,
    make_subject_in_arm,
    make_user,
    site_today,
)
from .builders.treatment import (
    add_cycle,
    add_oral_period,
    add_treatment_records,
    make_subject_randomized_days_ago,
    randomized_on,
)
from .builders.worlds import built_once, close_worlds, fresh, taken_from_world

pytestmark = pytest.mark.django_db

INITIALS, BIRTH_DATE = "QXZ", "1965-05-17"  # the builders' date of birth for every subject
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


# --- the study ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """At 101: a subject in arm A with a serious AE (two drugs, different actions), one in arm
    B with an AE who ended treatment and withdrew, a confirmed screen failure (with initials),
    one registered only; at 202: a subject in arm B with an AE. Built once for the module."""
    with built_once(django_db_blocker):
        load_starter_terms()
        site, other_site = make_site("101"), make_site("202")
        coordinator = make_user(Role.SITE_STAFF, site, username="coordinator")
        investigator = make_user(Role.INVESTIGATOR, site, username="investigator")
        other_coordinator = make_user(Role.SITE_STAFF, other_site, username="other")
        term = CtcaeTerm.objects.get
        arm_a = make_subject_in_arm(Arm.A, site, by=coordinator)
        ae_services.record_adverse_event(
            arm_a,
            user=coordinator,
            term=term(term="Hypertension"),
            grade=3,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            serious=True,
            sc_hospitalization=True,
            # Two hours ago, but not before the onset day began at the site (00:00-02:00 there).
            site_aware_at=max(
                timezone.now() - timedelta(hours=2),
                datetime.combine(site_today(site), time(0), tzinfo=site.zoneinfo),
            ),
            causality={
                "toripalimab": {"causality": "possible", "action_taken": "not_changed"},
                "bevacizumab": {"causality": "probable", "action_taken": "interrupted"},
            },
        )
        arm_b = make_subject_in_arm(Arm.B, site, by=coordinator)
        ae_services.record_adverse_event(
            arm_b,
            user=coordinator,
            term=term(term="Diarrhea"),
            grade=2,
            onset_date=site_today(),
            end_date=site_today(),
            outcome="recovered",
            immune_related=False,
            causality={"sorafenib": {"causality": "unlikely", "action_taken": "reduced"}},
        )
        for status in (SubjectStatus.TREATMENT_ENDED, SubjectStatus.WITHDRAWN):
            # today at the site (the randomization date: the site's date, ahead of UTC's at night)
            subject_services.change_status(
                arm_b, status, user=coordinator, reason="Test", on_date=arm_b.status_date
            )
        failed = make_subject(site, by=coordinator, initials=INITIALS)
        assessment = make_eligible_assessment(failed, by=coordinator, sign=False, ecog=2)
        eligibility_services.confirm_screen_failure(
            assessment, user=investigator, password=PASSWORD
        )
        make_subject(site, by=coordinator, consented=False)
        other = make_subject_in_arm(Arm.B, other_site, by=other_coordinator)
        ae_services.record_adverse_event(
            other,
            user=other_coordinator,
            term=term(term="Alopecia"),
            grade=1,
            onset_date=site_today(),
            ongoing=True,
            outcome="recovering",
            causality={"sorafenib": {"causality": "definite", "action_taken": "not_changed"}},
        )
        yield SimpleNamespace(
            study={"arm_a": arm_a, "arm_b": arm_b, "failed": failed, "other": other},
            site=site,
            other_site=other_site,
            coordinator=coordinator,
            investigator=investigator,
            other_coordinator=other_coordinator,
        )


@pytest.fixture
def study(world):
    """The world's records, as the database holds them for this test."""
    return {name: fresh(subject) for name, subject in world.study.items()}


# The conftest's site people, taken from the world (theirs would be a second site 101).
site, other_site, coordinator, investigator, other_coordinator = taken_from_world(
    "site", "other_site", "coordinator", "investigator", "other_coordinator"
)


@pytest.fixture
def outside_the_world():
    """For the transactional tests (they commit, other connections read): the world's
    transaction is ended first, and they have a site and people of their own."""
    close_worlds()
    site = make_site("101")
    return SimpleNamespace(
        site=site,
        coordinator=make_user(Role.SITE_STAFF, site, username="coordinator"),
        investigator=make_user(Role.INVESTIGATOR, site, username="investigator"),
        data_manager=make_user(Role.DATA_MANAGER, username="dm", is_staff=True),
    )


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site, username="monitor")


# --- reading what was written ------------------------------------------------------------------


def _read_schema(path: Path) -> dict:
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode()
    return json.loads(text.lstrip("\ufeff"))


@pytest.fixture
def validators(reference_file):
    full = _read_schema(reference_file("dataset-json1-1/dataset.schema.json"))
    ndjson = _read_schema(reference_file("dataset-json1-1/dataset-ndjson-schema.json"))
    draft = jsonschema.validators.validator_for(full)
    draft.check_schema(full)
    return {
        "json": draft(full),
        "ndjson_metadata": jsonschema.Draft201909Validator(ndjson["$defs"]["DatasetMetadata"]),
    }


def text_of(dataset, user, *, ndjson=False) -> str:
    return "".join(dataset_json.Export(dataset, user, ndjson=ndjson))


def parsed(dataset, user) -> dict:
    return json.loads(text_of(dataset, user))


def table(name: str, user) -> list[dict]:
    document = parsed(dataset_json.dataset_named(name), user)
    names = [c["name"] for c in document["columns"]]
    return [dict(zip(names, row, strict=True)) for row in document["rows"]]


def check_values(document: dict) -> None:
    """Every value has the JSON type its column's dataType says (null = missing)."""
    for row in document["rows"]:
        for column, value in zip(document["columns"], row, strict=True):
            if value is None:
                continue
            kind = column["dataType"]
            if kind == "integer":
                assert isinstance(value, int) and not isinstance(value, bool), column
            elif kind == "decimal":
                assert column["targetDataType"] == "decimal" and Decimal(value) == Decimal(value)
            elif kind == "date":
                assert ISO_DATE.match(value), (column, value)
            elif kind == "datetime":
                assert ISO_DATETIME.match(value), (column, value)
            else:
                assert kind == "string" and isinstance(value, str), (column, value)
                if column.get("length") == 1:
                    assert len(value) == 1, (column, value)


# --- the schemas ---------------------------------------------------------------------------------


def test_every_dataset_is_valid_dataset_json(study, data_manager, validators):
    names = [d.name for d in dataset_json.datasets()]
    assert names[:5] == ["DM", "DS", "IE", "AE", "SUPPAE"]
    assert {"SITE", "SUBJECTS", "ELIG", "ELIG_CRITERIA", "RAND", "ADVERSE_EVENTS"} <= set(names)
    assert {"AE_CAUSALITY", "DQ", "DQ_THREAD"} <= set(names)
    assert len(names) == len(set(names))
    for dataset in dataset_json.datasets():
        document = parsed(dataset, data_manager)
        validators["json"].validate(document)
        assert document["datasetJSONVersion"] == "1.1.0"
        assert document["name"] == dataset.name and document["itemGroupOID"] == f"IG.{dataset.name}"
        assert document["studyOID"] == settings.EDC_STUDY_ID
        assert document["dbLastModifiedDateTime"] <= document["datasetJSONCreationDateTime"]
        assert document["records"] == len(document["rows"])
        assert all(len(row) == len(document["columns"]) for row in document["rows"])
        assert len({c["itemOID"] for c in document["columns"]}) == len(document["columns"])
        check_values(document)


def test_every_dataset_is_valid_ndjson(study, data_manager, validators):
    for dataset in dataset_json.datasets():
        lines = text_of(dataset, data_manager, ndjson=True).splitlines()
        meta = json.loads(lines[0])
        validators["ndjson_metadata"].validate(meta)
        validators["json"].validate({**meta, "rows": []})
        assert "rows" not in meta
        rows = [json.loads(line) for line in lines[1:]]
        assert meta["records"] == len(rows)
        assert all(isinstance(r, list) and len(r) == len(meta["columns"]) for r in rows)
        # the same rows as the JSON file
        assert rows == parsed(dataset, data_manager)["rows"]


class _Counting(sdtm.Dataset):
    """100,000 rows, counting how many were read."""

    name, label = "MANY", "Many rows"
    columns = (sdtm.Column("N", "Number", "integer"),)
    total, read = 100_000, 0

    def count(self, user):
        return self.total

    def rows(self, user):
        for n in range(self.total):
            self.read += 1
            yield [n]


@pytest.mark.parametrize("ndjson", [False, True])
def test_the_rows_are_streamed_after_the_metadata(db, ndjson):
    dataset = _Counting()
    chunks = iter(dataset_json.Export(dataset, None, ndjson=ndjson))
    first = next(chunks)
    assert first.startswith('{"datasetJSONCreationDateTime":')
    assert '"columns":[' in first and 0 < dataset.read < dataset.total
    rest = "".join(chunks)
    assert dataset.read == dataset.total
    if ndjson:
        assert len((first + rest).splitlines()) == dataset.total + 1
    else:
        assert json.loads(first + rest)["rows"][-1] == [dataset.total - 1]


class _Blocks(_Counting):
    """The same rows, given already encoded in blocks of several rows (as PostgreSQL gives
    the AE rows)."""

    total = 5

    def json_lines(self, user):
        lines = [sdtm.encode(row) for row in self.rows(user)]
        return iter(["\n".join(lines[:3]), "\n".join(lines[3:])])


@pytest.mark.parametrize("ndjson", [False, True])
def test_rows_given_as_encoded_blocks_make_the_same_file(db, ndjson):
    blocks = text_of(_Blocks(), None, ndjson=ndjson)
    with_rows = _Blocks()
    with_rows.json_lines = lambda user: None
    assert _without_stamps(blocks) == _without_stamps(text_of(with_rows, None, ndjson=ndjson))
    rows = blocks.splitlines()[1:] if ndjson else json.loads(blocks)["rows"]
    assert rows == (["[0]", "[1]", "[2]", "[3]", "[4]"] if ndjson else [[0], [1], [2], [3], [4]])


def _without_stamps(text: str) -> str:
    return re.sub(r'"(datasetJSONCreationDateTime|fileOID)":"[^"]*"', "", text)


# --- counts and content --------------------------------------------------------------------------


def _expected_ds_rows(subjects) -> int:
    rows = 0
    for subject in subjects:
        reached = set(
            Subject.history.filter(id=subject.pk)
            .exclude(status__in=[SubjectStatus.SCREENING, SubjectStatus.RANDOMIZED])
            .values_list("status", flat=True)
        )
        consent = subject.consent_date is not None
        rows += consent + Allocation.objects.filter(subject=subject).exists() + len(reached)
    return rows


def test_row_counts_match_the_database(study, data_manager):
    subjects = list(Subject.objects.all())
    assert len(table("dm", data_manager)) == len(subjects)
    assert len(table("ae", data_manager)) == AdverseEvent.objects.count()
    failed = sum(
        len(eligibility_services.evaluate_eligibility(a).failed)
        for a in EligibilityAssessment.objects.all()
    )
    assert failed >= 1
    assert len(table("ie", data_manager)) == failed
    assert len(table("ds", data_manager)) == _expected_ds_rows(subjects)
    assert len(table("rand", data_manager)) == Allocation.objects.count()
    assert len(table("elig", data_manager)) == EligibilityAssessment.objects.count()
    assert len(table("elig_criteria", data_manager)) == 34 * EligibilityAssessment.objects.count()


def test_usubjid_is_the_study_id_and_the_subject_identifier(study, data_manager):
    study_id = settings.EDC_STUDY_ID
    dm = table("DM", data_manager)
    assert {r["USUBJID"] for r in dm} == {
        f"{study_id}-{s.subject_identifier}" for s in Subject.objects.all()
    }
    assert all(r["SUBJID"] == r["USUBJID"].removeprefix(f"{study_id}-") for r in dm)
    for name in ("dm", "ds", "ie", "ae", "suppae", "elig", "ae_causality", "subjects"):
        for row in table(name, data_manager):
            assert re.fullmatch(rf"{re.escape(study_id)}-\d{{3}}-\d{{4}}", row["USUBJID"])
            assert row["STUDYID"] == study_id


def test_dm_arms_reference_dates_and_demographics(study, data_manager):
    dm = {r["SUBJID"]: r for r in table("dm", data_manager)}
    arm_a, failed = study["arm_a"], study["failed"]
    row = dm[arm_a.subject_identifier]
    assert (row["ARMCD"], row["ARM"]) == ("A", "Toripalimab + bevacizumab")
    # randomized, no exposure recorded (yet): not treated (SDTMIG), and no exposure dates
    assert (row["ACTARMCD"], row["ACTARM"]) == ("NOTTRT", "Not Treated")
    assert row["RFXSTDTC"] is None and row["RFXENDTC"] is None
    # the clinical date the subject became randomized (its status date), as DS says too
    assert row["RFSTDTC"] == arm_a.status_date.isoformat()
    randomized = [
        r
        for r in table("ds", data_manager)
        if r["USUBJID"] == row["USUBJID"] and r["DSDECOD"] == "RANDOMIZED"
    ]
    assert [r["DSSTDTC"] for r in randomized] == [row["RFSTDTC"]]
    assert (row["SITEID"], row["COUNTRY"], row["AGE"], row["AGEU"]) == (
        "101",
        "CHN",
        arm_a.age,
        "YEARS",
    )
    assert row["SEX"] in {"M", "F"} and row["DTHFL"] is None
    assert (dm[failed.subject_identifier]["ARMCD"], dm[failed.subject_identifier]["ARM"]) == (
        "SCRNFAIL",
        "Screen Failure",
    )
    assert dm[failed.subject_identifier]["RFSTDTC"] is None
    not_assigned = [r for r in dm.values() if r["RFICDTC"] is None]
    assert [(r["ARMCD"], r["ACTARM"]) for r in not_assigned] == [("NOTASSGN", "Not Assigned")]
    assert (dm[failed.subject_identifier]["ACTARMCD"], dm[failed.subject_identifier]["ACTARM"]) == (
        "SCRNFAIL",
        "Screen Failure",
    )


def test_dm_actual_arm_and_exposure_dates_come_from_the_exposure_crfs(
    site, coordinator, data_manager, validators
):
    """Treated subjects are in the arm whose drugs they took, with their first and last
    exposure (RFXSTDTC / RFXENDTC: EX's earliest start and latest end, an ongoing period
    counting from its start); a randomized subject never dosed is NOTTRT; a held period or a
    dose not given is no exposure."""
    arm_a, arm_b = add_treatment_records(site, by=coordinator)
    start_a, start_b = randomized_on(arm_a), randomized_on(arm_b)
    add_cycle(arm_a, 2, by=coordinator)  # both drugs again on day 22
    held = make_subject_randomized_days_ago(Arm.B, site, 20, by=coordinator)
    add_oral_period(
        held,
        by=coordinator,
        start=randomized_on(held),
        stop=randomized_on(held) + timedelta(days=3),
        level=DoseLevel.HELD,
        why="Grade 3 hypertension",
    )
    untreated = make_subject_in_arm(Arm.A, site, by=coordinator)
    document = parsed(dataset_json.dataset_named("DM"), data_manager)
    validators["json"].validate(document)
    check_values(document)
    names = [c["name"] for c in document["columns"]]
    assert names[names.index("RFSTDTC") :][:3] == ["RFSTDTC", "RFXSTDTC", "RFXENDTC"]
    dm = {r["SUBJID"]: r for r in (dict(zip(names, row, strict=True)) for row in document["rows"])}

    def actual(subject):
        row = dm[subject.subject_identifier]
        return row["ACTARMCD"], row["ACTARM"], row["RFXSTDTC"], row["RFXENDTC"]

    assert actual(arm_a) == (
        "A",
        "Toripalimab + bevacizumab",
        start_a.isoformat(),
        (start_a + timedelta(days=21)).isoformat(),
    )
    # 800 mg/day for 14 days, then 400 mg/day still ongoing (no stop: its start date)
    assert actual(arm_b) == (
        "B",
        "Sorafenib",
        start_b.isoformat(),
        (start_b + timedelta(days=14)).isoformat(),
    )
    assert actual(held)[:3] == ("NOTTRT", "Not Treated", None)
    assert actual(untreated) == ("NOTTRT", "Not Treated", None, None)
    for subject in (arm_a, arm_b, held, untreated):  # the planned arm is the allocation's
        assert dm[subject.subject_identifier]["ARMCD"] == subject.allocation.arm


def test_dm_reads_exposure_in_bulk(site, coordinator, data_manager):
    """The DM dataset reads the exposure (and the randomization date) of a batch of subjects at
    once: three times the treated subjects, no more queries."""
    treated = [add_treatment_records(site, by=coordinator)]
    with CaptureQueriesContext(connection) as few:
        table("DM", data_manager)
    treated += [add_treatment_records(site, by=coordinator) for _ in range(2)]
    with CaptureQueriesContext(connection) as many:
        rows = {r["SUBJID"]: r for r in table("DM", data_manager)}
    assert len(rows) == Subject.objects.count()
    for arm_a, arm_b in treated:
        assert rows[arm_a.subject_identifier]["ACTARMCD"] == "A"
        assert rows[arm_b.subject_identifier]["ACTARMCD"] == "B"
    assert len(many.captured_queries) <= len(few.captured_queries)


def test_ds_has_each_disposition_event_with_cdisc_terms(study, data_manager):
    ds = table("ds", data_manager)
    assert {r["DSDECOD"] for r in ds} <= {t[1] for t in sdtm.DS_EVENTS.values()}
    by_subject: dict[str, list[str]] = {}
    for row in ds:
        by_subject.setdefault(row["USUBJID"], []).append(row["DSDECOD"])
        assert ISO_DATE.match(row["DSSTDTC"])
    study_id = settings.EDC_STUDY_ID
    assert by_subject[f"{study_id}-{study['arm_b'].subject_identifier}"] == [
        "INFORMED CONSENT OBTAINED",
        "RANDOMIZED",
        "OTHER",  # end of treatment: no reason is collected
        "WITHDRAWAL BY SUBJECT",
    ]
    assert by_subject[f"{study_id}-{study['failed'].subject_identifier}"] == [
        "INFORMED CONSENT OBTAINED",
        "SCREEN FAILURE",
    ]
    seqs = [r["DSSEQ"] for r in ds if r["USUBJID"].endswith(study["arm_b"].subject_identifier)]
    assert seqs == [1, 2, 3, 4]


def test_ie_lists_the_criteria_not_met(study, data_manager):
    ie = table("ie", data_manager)
    failed = eligibility_services.evaluate_eligibility(study["failed"].eligibility).failed
    mine = [r for r in ie if r["USUBJID"].endswith(study["failed"].subject_identifier)]
    assert [r["IETESTCD"] for r in mine] == [c.code for c in failed]
    assert "IN07" in [r["IETESTCD"] for r in mine]  # ECOG 2
    for row in ie:
        inclusion = row["IETESTCD"].startswith("IN")
        assert row["IECAT"] == ("INCLUSION" if inclusion else "EXCLUSION")
        assert row["IEORRES"] == row["IESTRESC"] == ("N" if inclusion else "Y")
        assert row["IETEST"] and ISO_DATE.match(row["IEDTC"])


def test_ae_and_suppae_use_controlled_terms(study, data_manager):
    study_id = settings.EDC_STUDY_ID
    rows = table("ae", data_manager)
    for row in rows:
        assert row["AEOUT"] in sdtm.AEOUT.values()
        assert row["AEREL"] in sdtm.AEREL.values()
        assert row["AEACN"] in {*sdtm.AEACN.values(), "MULTIPLE"}
        for flag in ("AESER", "AECONTRT", *sdtm.SERIOUS_FLAGS):
            assert row[flag] in {"Y", "N"}
        assert row["AESEQ"] == int(row["AESPID"])
        assert row["AETOXGR"] in {"1", "2", "3", "4", "5"}
    serious = next(r for r in rows if r["USUBJID"].endswith(study["arm_a"].subject_identifier))
    assert (serious["AESER"], serious["AESHOSP"], serious["AESDTH"]) == ("Y", "Y", "N")
    assert (serious["AEDECOD"], serious["AEBODSYS"]) == ("Hypertension", "Vascular disorders")
    assert serious["AEREL"] == "PROBABLY RELATED" and serious["AEACN"] == "MULTIPLE"
    assert serious["AEOUT"] == "NOT RECOVERED/NOT RESOLVED" and serious["AEENDTC"] is None
    supp = [
        r
        for r in table("suppae", data_manager)
        if r["USUBJID"] == f"{study_id}-{study['arm_a'].subject_identifier}"
    ]
    assert {r["QNAM"]: r["QVAL"] for r in supp if r["QNAM"] != "SAEAWDTC"} == {
        "AEREL1": "POSSIBLY RELATED",
        "AEACN1": "DOSE NOT CHANGED",
        "AEREL2": "PROBABLY RELATED",
        "AEACN2": "DRUG INTERRUPTED",
        "AEIRAE": "N",
    }
    aware = next(r for r in supp if r["QNAM"] == "SAEAWDTC")
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", aware["QVAL"])
    assert {(r["RDOMAIN"], r["IDVAR"], r["IDVARVAL"]) for r in supp} == {("AE", "AESEQ", "1")}


def test_the_terms_cover_every_code_of_the_registry():
    ae_form = records.form_named("adverse-events")
    codes = {i.name: {c for c, _ in i.codelist} for i in ae_form.items}
    assert codes["outcome"] == set(sdtm.AEOUT)
    [causality] = ae_form.children
    child_codes = {i.name: {c for c, _ in i.codelist} for i in causality.items}
    assert child_codes["causality"] == set(sdtm.AEREL)
    assert child_codes["action_taken"] == set(sdtm.AEACN)
    statuses = {s.value for s in SubjectStatus} - {SubjectStatus.SCREENING}
    assert statuses <= set(sdtm.DS_EVENTS)


def test_the_fast_reader_reads_what_the_records_say(study, data_manager):
    """Items that are paths of model fields are read with ``values_list`` and child rows merged
    alongside: the same values as the records' instances give."""
    assert sdtm.Reader(records.form_named("adverse-events"), sdtm.AE_ITEMS, ["causality"]).fast
    for form in records.export_forms():
        model = form.model_class()
        names = [
            item.name
            for item in form.visible_items(identifiers=False)
            if sdtm.field_path(model, item.source)
        ]
        groups = [g.name for g in form.children if sdtm.Reader._child_paths(g) is not None]
        reader = sdtm.Reader(form, names, groups)
        assert reader.fast, form.name
        queryset = records.records(form, data_manager)
        fast = list(reader._values(queryset))
        assert fast == list(reader._instances(queryset)), form.name
        assert len(fast) == queryset.count()


# --- privacy and scope ---------------------------------------------------------------------------


def test_no_initials_or_date_of_birth_in_any_dataset_for_anyone(study, data_manager, sponsor):
    for user in (data_manager, sponsor, None):
        for dataset in dataset_json.datasets():
            text = text_of(dataset, user)
            names = {c["name"].lower() for c in json.loads(text)["columns"]}
            assert not names & {"initials", "date_of_birth", "brthdtc"}, dataset.name
            assert f'"{INITIALS}"' not in text and BIRTH_DATE not in text, dataset.name


def test_a_monitor_of_101_gets_no_row_of_202(study, monitor, data_manager):
    study_id = settings.EDC_STUDY_ID
    for dataset in dataset_json.datasets():
        document = parsed(dataset, monitor)
        names = [c["name"] for c in document["columns"]]
        rows = [dict(zip(names, row, strict=True)) for row in document["rows"]]
        if "USUBJID" in names:
            assert all(r["USUBJID"].startswith(f"{study_id}-101-") for r in rows), dataset.name
        if "site" in names:
            assert {r["site"] for r in rows} <= {"101"}, dataset.name
    assert [r["code"] for r in table("site", monitor)] == ["101"]
    everyone = {r["USUBJID"] for r in table("ae", data_manager)}
    assert f"{study_id}-{study['other'].subject_identifier}" in everyone


def test_a_crf_added_later_is_exported_with_no_new_code(
    study, data_manager, monkeypatch, validators
):
    later = ExportForm(
        name="consents",
        label="Informed consent",
        model="subjects.Subject",
        oid="IC",
        subject_path="pk",
        select_related=("site",),
        items=model_items(Subject, ("consent_date", "consent_version", "date_of_birth")),
    )
    forms = records.export_forms()
    monkeypatch.setattr(records, "export_forms", lambda: [*forms, later])
    document = parsed(dataset_json.dataset_named("ic"), data_manager)
    validators["json"].validate(document)
    assert [c["name"] for c in document["columns"]] == [
        "STUDYID",
        "USUBJID",
        "consent_date",
        "consent_version",
    ]
    assert document["records"] == Subject.objects.count()


# --- the API -------------------------------------------------------------------------------------


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def body(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_the_api_streams_json_and_ndjson(study, sponsor, validators):
    client = api(sponsor)
    response = client.get("/api/v1/exports/dataset-json/dm/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/json")
    assert 'filename="dm.json"' in response["Content-Disposition"]
    document = json.loads(body(response))
    validators["json"].validate(document)
    assert document["records"] == Subject.objects.count()
    for url in (
        "/api/v1/exports/dataset-json/AE/?format=ndjson",
        "/api/v1/exports/dataset-json/ae.ndjson",
        "/api/v1/exports/dataset-json/Ae.ndjson/",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("application/x-ndjson")
        lines = body(response).splitlines()
        validators["ndjson_metadata"].validate(json.loads(lines[0]))
        assert len(lines) - 1 == AdverseEvent.objects.count()


def test_the_api_refuses_with_a_sentence(study, sponsor, coordinator):
    response = api(sponsor).get("/api/v1/exports/dataset-json/lb/")
    assert response.status_code == 404
    assert "There is no Dataset-JSON dataset 'lb'" in response.json()["detail"]
    assert "DM, DS, IE, AE, SUPPAE" in response.json()["detail"]
    response = api(sponsor).get("/api/v1/exports/dataset-json/dm/", {"format": "csv"})
    assert response.status_code == 400 and "ndjson" in response.json()["detail"]
    assert api(coordinator).get("/api/v1/exports/dataset-json/dm/").status_code == 403
    assert APIClient().get("/api/v1/exports/dataset-json/dm/").status_code in (401, 403)


def test_the_api_is_scoped_to_the_users_sites(study, monitor):
    response = api(monitor).get("/api/v1/exports/dataset-json/ae/")
    rows = json.loads(body(response))["rows"]
    assert rows and all("-101-" in row[2] for row in rows)


# --- the command ---------------------------------------------------------------------------------


def test_the_command_writes_one_valid_file_per_dataset(study, tmp_path, validators, capsys):
    call_command("export_datasets", str(tmp_path))
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(f"{d.name.lower()}.json" for d in dataset_json.datasets())
    for path in tmp_path.iterdir():
        document = json.loads(path.read_text(encoding="utf-8"))
        validators["json"].validate(document)
        assert document["records"] == len(document["rows"])
    assert f"{tmp_path / 'dm.json'}: {Subject.objects.count()} records" in capsys.readouterr().out


def test_the_command_writes_ndjson_of_chosen_domains_for_a_user(
    study, tmp_path, monitor, validators
):
    call_command("export_datasets", str(tmp_path), "--ndjson", "--domain", "dm", "AE")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ae.ndjson", "dm.ndjson"]
    lines = (tmp_path / "ae.ndjson").read_text(encoding="utf-8").splitlines()
    validators["ndjson_metadata"].validate(json.loads(lines[0]))
    assert len(lines) - 1 == AdverseEvent.objects.count()
    mine = tmp_path / "mine"
    mine.mkdir()
    call_command("export_datasets", str(mine), "--user", "monitor", "--domain", "ae")
    rows = json.loads((mine / "ae.json").read_text(encoding="utf-8"))["rows"]
    assert rows and all("-101-" in row[2] for row in rows)


def test_the_command_refuses_with_a_sentence(study, tmp_path, coordinator):
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("export_datasets", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="There is no Dataset-JSON dataset 'lb'"):
        call_command("export_datasets", str(tmp_path), "--domain", "lb")
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        call_command("export_datasets", str(tmp_path), "--user", "nobody")
    with pytest.raises(CommandError, match="may not read the sponsor exports"):
        call_command("export_datasets", str(tmp_path), "--user", coordinator.username)
    (tmp_path / ".dm.json.part").mkdir()  # something in the way of the file: cannot write
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("export_datasets", str(tmp_path), "--domain", "dm")
    assert not (tmp_path / "dm.json").exists()


def test_dates_are_iso_8601(study, data_manager):
    ae = table("ae", data_manager)
    assert all(ISO_DATE.match(r["AESTDTC"]) for r in ae)
    assert days_ago(0).isoformat() in {r["AESTDTC"] for r in ae}


# --- PostgreSQL builds the AE and SUPPAE rows: the same text as the Python rows -----------------


@pytest.fixture
def awkward_values(study):
    """Values JSON must escape (quotes, backslash, line breaks, control characters), unicode,
    an AE without causality and without end date, SAE times off UTC and with microseconds."""
    ae = AdverseEvent.objects.get(subject=study["arm_a"])
    ae.verbatim_term = 'Tab\t "quoted" \\ back\nnew line\r\x01 naïve 肝 😀 \u2028 é'
    ae.site_aware_at = datetime(2024, 3, 1, 23, 59, 59, 999999, tzinfo=ZoneInfo("Asia/Shanghai"))
    ae.sae_reported_at = datetime(2024, 3, 2, 0, 0, 1, tzinfo=ZoneInfo("America/New_York"))
    # saved as stored values, past the CRF's rules: what the export reads, not how it was entered
    ae._change_reason = "Export test"
    ae.save(update_fields=["verbatim_term", "site_aware_at", "sae_reported_at"])
    for causality in AdverseEvent.objects.get(subject=study["other"]).causalities.all():
        causality._change_reason = "Export test"
        causality.delete()
    return study


def _python_text(dataset, user, *, ndjson):
    """The reference: the oracle's rows encoded one by one in Python."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(dataset), "json_lines", lambda self, user: None)
        patch.setattr(type(dataset), "rows", lambda self, user: sdtm_oracle.rows(self, user))
        return text_of(dataset, user, ndjson=ndjson)


@pytest.mark.parametrize("name", ["AE", "SUPPAE"])
def test_the_database_builds_the_same_rows_byte_for_byte(
    awkward_values, name, data_manager, sponsor, monitor, coordinator, other_coordinator
):
    dataset = dataset_json.dataset_named(name)
    nobody = make_user(Role.SITE_STAFF, username="no-site")
    for user in (None, data_manager, sponsor, monitor, coordinator, other_coordinator, nobody):
        built = dataset.json_lines(user)
        assert built is not None, "the database builds the rows"
        expected = [sdtm.encode(row) for row in sdtm_oracle.rows(dataset, user)]
        lines = "\n".join(built)
        assert (lines.split("\n") if lines else []) == expected, (name, user)
        assert len(expected) == dataset.count(user)
        for ndjson in (False, True):
            text = text_of(dataset, user, ndjson=ndjson)
            assert _without_stamps(text) == _without_stamps(
                _python_text(dataset, user, ndjson=ndjson)
            ), (name, user, ndjson)
    monitor_rows = table(name, monitor)
    assert monitor_rows and all(
        r["USUBJID"].startswith(f"{settings.EDC_STUDY_ID}-101-") for r in monitor_rows
    )
    assert not [sdtm.encode(row) for row in sdtm_oracle.rows(dataset, nobody)]


# the form datasets whose items and child rows are all paths of model fields
BUILT_BY_THE_DATABASE = {"SITE", "ADVERSE_EVENTS", "AE_CAUSALITY", "CYC", "CYC_IV_DOSES", "TA"}


def test_the_database_builds_the_form_datasets_byte_for_byte(awkward_values, monitor):
    built = set()
    for dataset in dataset_json.datasets():
        for user in (None, monitor):
            lines = dataset.json_lines(user)
            if lines is None:
                continue
            built.add(dataset.name)
            text = "\n".join(lines)
            expected = [sdtm.encode(row) for row in sdtm_oracle.rows(dataset, user)]
            assert (text.split("\n") if text else []) == expected, (dataset.name, user)
    assert built >= BUILT_BY_THE_DATABASE | {"AE", "SUPPAE"}


def test_the_database_rows_hold_the_awkward_values(awkward_values, data_manager):
    ae = {r["AESEQ"]: r for r in table("ae", data_manager) if r["AESER"] == "Y"}[1]
    assert ae["AETERM"].startswith('Tab\t "quoted" \\ back\nnew line\r\x01 naïve 肝 😀')
    assert (ae["AEREL"], ae["AEACN"]) == ("PROBABLY RELATED", "MULTIPLE")
    supp = {(r["USUBJID"], r["QNAM"]): r["QVAL"] for r in table("suppae", data_manager)}
    arm_a = f"{settings.EDC_STUDY_ID}-{awkward_values['arm_a'].subject_identifier}"
    assert supp[(arm_a, "SAEAWDTC")] == "2024-03-01T15:59:59"
    assert supp[(arm_a, "SAERPDTC")] == "2024-03-02T05:00:01"
    other = f"{settings.EDC_STUDY_ID}-{awkward_values['other'].subject_identifier}"
    assert [q for u, q in supp if u == other] == ["AEIRAE"]
    assert {r["AEREL"] for r in table("ae", data_manager) if r["USUBJID"] == other} == {None}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dataset_is_one_moment_whatever_is_saved_while_it_streams(outside_the_world, monkeypatch):
    """An AE recorded while the AE dataset is made (committed by another connection between the
    count and the rows) is not in it: its records and its rows are one state of the data."""
    import threading

    site, coordinator = outside_the_world.site, outside_the_world.coordinator
    investigator, data_manager = outside_the_world.investigator, outside_the_world.data_manager
    load_starter_terms()
    fatigue = CtcaeTerm.objects.get(term="Fatigue")

    def record(subject):
        ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=fatigue,
            grade=1,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            causality={"sorafenib": {"causality": "possible", "action_taken": "not_changed"}},
        )

    subject = make_subject_in_arm(Arm.B, site, by=coordinator, investigator=investigator)
    record(subject)
    record(subject)

    def meanwhile():
        try:
            record(subject)
        finally:
            connection.close()  # this thread's own connection

    dataset = dataset_json.dataset_named("AE")
    count = dataset.count

    def count_then_save(user):
        counted = count(user)
        saver = threading.Thread(target=meanwhile)
        saver.start()
        saver.join()
        return counted

    monkeypatch.setattr(dataset, "count", count_then_save)
    text = "".join(dataset_json.Export(dataset, data_manager))
    monkeypatch.undo()
    during = json.loads(text)
    assert during["records"] == len(during["rows"]) == 2
    after = parsed(dataset_json.dataset_named("AE"), data_manager)
    assert after["records"] == len(after["rows"]) == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_command_writes_every_dataset_as_of_one_moment(
    outside_the_world, tmp_path, monkeypatch
):
    """A subject registered after the first file was written (by another connection) is in
    none of the files: DM holds the subjects of the moment AE was read."""
    import threading

    from exports.management.commands import export_datasets

    site, coordinator = outside_the_world.site, outside_the_world.coordinator
    investigator = outside_the_world.investigator
    make_subject_in_arm(Arm.B, site, by=coordinator, investigator=investigator)

    def meanwhile():
        try:
            make_subject(site, by=coordinator)
        finally:
            connection.close()  # this thread's own connection

    write = export_datasets.Command._write
    written = []

    def write_then_save(export, path):
        write(export, path)
        written.append(path.name)
        if len(written) == 1:
            saver = threading.Thread(target=meanwhile)
            saver.start()
            saver.join()

    monkeypatch.setattr(export_datasets.Command, "_write", staticmethod(write_then_save))
    call_command("export_datasets", str(tmp_path), "--domain", "ae", "--domain", "dm")
    assert written == ["ae.json", "dm.json"]
    dm = json.loads((tmp_path / "dm.json").read_text())
    assert dm["records"] == len(dm["rows"]) == 1
    assert Subject.objects.count() == 2  # the second one is saved, after the moment


@pytest.mark.parametrize("value", [None, "1.5", "-100", "0"])
def test_a_decimal_item_is_written_to_its_fields_places_by_the_database(db, value):
    """The JSON text the database writes for a decimal item is ``encode(item_value(...))``,
    NULL too (SQLite keeps decimals as REAL: its printf() would write a NULL as "0.00")."""
    field = DecimalField(max_digits=5, decimal_places=2)
    item = next(i for i in records.form_named("target-lesions").items if i.type == "float")
    with connection.cursor() as cursor:  # with parameters, as the export runs it
        cursor.execute(
            f"SELECT {sqljson.item_sql('float', field, 'a.x')} "
            "FROM (SELECT CAST(%s AS NUMERIC(5, 2)) AS x) a",
            [value],
        )
        (written,) = cursor.fetchone()
    expected = None if value is None else Decimal(value).quantize(Decimal("0.01"))
    assert written == sdtm.encode(dataset_json.item_value(item, expected))


@pytest.mark.parametrize(
    "value",
    [
        None,
        datetime(2025, 3, 4, 5, 6, 7, tzinfo=ZoneInfo("UTC")),
        datetime(2025, 3, 4, 5, 6, 7, 1, tzinfo=ZoneInfo("UTC")),
        datetime(2025, 1, 1, 0, 0, 0, 999999, tzinfo=ZoneInfo("Pacific/Kiritimati")),
    ],
)
def test_both_formats_write_a_timestamp_as_its_utc_isoformat(db, value):
    """ODM and Dataset-JSON share the database's spelling of a timestamp: ``isoformat()`` in
    UTC with a Z, a fraction only when there is one, as each format writes it in Python."""
    field = DateTimeField()
    item = next(i for i in records.form_named("adverse-events").items if i.type == "datetime")
    odm_value = odm_fragments._sql_value("a.x", field, odm_fragments._dialect(connection.alias))
    cast = "CAST(%s AS TEXT)" if connection.vendor == "sqlite" else "CAST(%s AS timestamptz)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {sqljson.item_sql('datetime', field, 'a.x')}, {odm_value} "
            f"FROM (SELECT {cast} AS x) a",
            [connection.ops.adapt_datetimefield_value(value)],
        )
        json_text, odm_text = cursor.fetchone()
    assert json_text == sdtm.encode(dataset_json.item_value(item, value))
    assert odm_text == (None if value is None else odm.odm_value(value))
