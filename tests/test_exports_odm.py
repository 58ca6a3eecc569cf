"""The CDISC ODM 1.3.2 export: snapshot and archival files valid against the XSD, metadata from
the registry, every subject of the scope with its site and values, no direct identifiers for the
sponsor, the audit trail as AuditRecords one to one with the history rows, deletions as Remove
transactions, the e-signature as a Signature; the API endpoint and the command."""

from __future__ import annotations

import io
import re
from functools import cache
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from lxml import etree
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events import services as ae_services
from adverse_events.models import AeCausality, CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core.audit import audited_delete, audited_save
from core.roles import Role
from exports import odm, records
from exports.odm import archive as odm_archive
from exports.odm import fragments as odm_fragments
from exports.odm import layout as odm_layout
from exports.odm import values as odm_values
from exports.odm import writer as odm_writer
from monitoring.models import CASEBOOK_MEANING, CasebookSignature
from queries import services as query_services
from randomization.arms import Arm
from subjects import services as subject_services
from subjects.models import Subject

from . import odm_oracle
from .builders import make_subject, make_subject_in_arm, make_user, site_today
from .builders.monitoring import add_monitoring_records

pytestmark = pytest.mark.django_db

NS = {"o": odm.NS}
XSD = "odm1-3-2/ODM1-3-2.xsd"


@cache
def _schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


@pytest.fixture
def schema(reference_file):
    return _schema(reference_file(XSD))


@pytest.fixture
def study(site, other_site, coordinator, investigator, other_coordinator, data_manager):
    """Site 101: a subject of arm B, signed eligible, with an AE (grade corrected, causality
    reassessed, a causality row deleted) and a query; a subject registered in error, deleted.
    Site 202: a screened subject."""
    load_starter_terms()
    randomized = make_subject_in_arm(Arm.B, site, by=coordinator, investigator=investigator)
    ae = ae_services.record_adverse_event(
        randomized,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality={"sorafenib": {"causality": "possible", "action_taken": "reduced"}},
    )
    ae = ae_services.update_adverse_event(
        ae,
        user=coordinator,
        reason="Grade corrected from source",
        grade=3,
        causality={"sorafenib": {"causality": "probable", "action_taken": "reduced"}},
    )
    query_services.raise_query(
        ae, field="grade", message="Please confirm the grade.", user=data_manager
    )
    in_error = make_subject(site, by=coordinator, consented=False, initials="ZZ")
    deleted = (in_error.pk, in_error.subject_identifier)
    subject_services.delete_subject(in_error, user=coordinator, reason="Registered twice")
    screened = make_subject(other_site, by=other_coordinator, initials="KW")
    return {"randomized": randomized, "ae": ae, "screened": screened, "deleted": deleted}


def export(user, *, archival=False) -> bytes:
    return b"".join(odm.export_for(user, archival=archival).chunks())


def valid(data: bytes, schema) -> etree._Element:
    root = etree.fromstring(data)
    assert schema.validate(root), str(schema.error_log)
    assert_references_resolve(root)
    return root


def assert_references_resolve(root) -> None:
    """Every OID a file refers to is defined in it (the XSD does not check this)."""
    defined = {
        (ref, oid)
        for tag, ref in (
            ("StudyEventDef", "StudyEventOID"),
            ("FormDef", "FormOID"),
            ("ItemGroupDef", "ItemGroupOID"),
            ("ItemDef", "ItemOID"),
            ("CodeList", "CodeListOID"),
            ("MeasurementUnit", "MeasurementUnitOID"),
            ("Location", "LocationOID"),
            ("User", "UserOID"),
            ("SignatureDef", "SignatureOID"),
        )
        for oid in root.xpath(f"//o:{tag}/@OID", namespaces=NS)
    }
    used = {
        (ref, element.get(ref))
        for ref in {r for r, _ in defined}
        for element in root.xpath(f"//*[@{ref}]", namespaces=NS)
        if not element.tag.endswith(("Def", "}CodeList", "}MeasurementUnit"))
    }
    assert used - defined == set()


def subjects_of(root) -> dict[str, str]:
    return {
        s.get("SubjectKey"): s.find("o:SiteRef", NS).get("LocationOID")
        for s in root.iterfind(".//o:SubjectData", NS)
    }


def value(parent, oid: str) -> str | None:
    found = parent.xpath(f".//o:ItemData[@ItemOID='{oid}']/@Value", namespaces=NS)
    return found[0] if found else None


def history_ids(user=None) -> set[str]:
    """``app.model:history_id`` of every history row of the exported models (in scope)."""
    found = set()
    scope = odm.Scope.of(user) if user else odm.Scope()
    for audited in odm.audited_models(odm.clinical_forms()):
        for history_id in audited.history(scope).values_list("history_id", flat=True):
            found.add(f"{audited.label}:{history_id}")
    return found


# --- snapshot ------------------------------------------------------------------------------------


def test_the_snapshot_validates_and_holds_every_subject_with_its_site_and_values(
    study, data_manager, investigator, schema
):
    root = valid(export(data_manager), schema)
    assert root.get("FileType") == "Snapshot" and root.get("ODMVersion") == "1.3.2"
    assert root.get("CreationDateTime").endswith("Z")
    current = {s.subject_identifier: f"LOC.{s.site.code}" for s in Subject.objects.all()}
    assert subjects_of(root) == current
    assert study["deleted"][1] not in current

    [subject] = root.xpath("//o:SubjectData[@SubjectKey=$key]", namespaces=NS, key="101-0001")
    [ae] = subject.xpath(
        "o:StudyEventData[@StudyEventOID='SE.COMMON']/o:FormData[@FormOID='F.AE']", namespaces=NS
    )
    assert ae.get("FormRepeatKey") == "1"
    assert value(ae, "I.AE.GRADE") == "3"
    assert value(ae, "I.AE.ONSET_DATE") == site_today().isoformat()
    assert value(ae, "I.AE.ONGOING") == "1" and value(ae, "I.AE.SERIOUS") == "0"
    [causality] = ae.xpath("o:ItemGroupData[@ItemGroupOID='IG.AE.CAUSALITY']", namespaces=NS)
    assert causality.get("ItemGroupRepeatKey") == "sorafenib"
    assert value(causality, "I.AE.CAUSALITY.CAUSALITY") == "probable"
    assert value(causality, "I.AE.CAUSALITY.RELATED") == "1"

    [eligibility] = subject.xpath(".//o:FormData[@FormOID='F.ELIG']", namespaces=NS)
    [signature] = eligibility.findall("o:Signature", NS)
    assert signature.find("o:UserRef", NS).get("UserOID") == f"USR.{investigator.username}"
    assert signature.find("o:SignatureRef", NS).get("SignatureOID") == "SD.ELIG.ELIGIBLE"
    assert signature.find("o:LocationRef", NS).get("LocationOID") == "LOC.101"
    criteria = eligibility.xpath("o:ItemGroupData[@ItemGroupOID='IG.ELIG.CRITERIA']", namespaces=NS)
    assert "IN01" in [c.get("ItemGroupRepeatKey") for c in criteria]
    assert value(subject, "I.DM.DATE_OF_BIRTH") == "1965-05-17"  # a data manager sees it

    [query] = subject.xpath(".//o:FormData[@FormOID='F.DQ']", namespaces=NS)
    assert value(query, "I.DQ.FIELD") == "grade"
    assert query.xpath("o:ItemGroupData[@ItemGroupOID='IG.DQ.THREAD']", namespaces=NS)


def test_the_metadata_is_the_registry(study, data_manager, schema):
    root = valid(export(data_manager), schema)
    [mdv] = root.iterfind(".//o:MetaDataVersion", NS)
    forms = [f for f in records.export_forms() if f.subject_path]
    assert [f.get("OID") for f in mdv.iterfind("o:FormDef", NS)] == [f"F.{f.code}" for f in forms]
    assert "F.SITE" not in {f.get("OID") for f in mdv.iterfind("o:FormDef", NS)}  # Locations
    expected = {}
    for form in forms:
        for group in (None, *form.children):
            stem = f"{form.code}.{group.name.upper()}" if group else form.code
            for item in group.items if group else form.items:
                expected[f"I.{stem}.{item.name.upper()}"] = item
    item_defs = {d.get("OID"): d for d in mdv.iterfind("o:ItemDef", NS)}
    assert set(item_defs) == set(expected)
    for oid, item in expected.items():
        definition = item_defs[oid]
        assert definition.get("DataType") == item.type.value
        assert definition.get("Length") == (str(item.length) if item.length else None)
        assert definition.findtext("o:Question/o:TranslatedText", namespaces=NS) == item.label
        codelist = definition.find("o:CodeListRef", NS)
        assert (codelist is not None) == bool(item.codelist)
        if codelist is not None:
            [cl] = mdv.xpath(
                "o:CodeList[@OID=$oid]", namespaces=NS, oid=codelist.get("CodeListOID")
            )
            coded = [
                (i.get("CodedValue"), i.findtext("o:Decode/o:TranslatedText", namespaces=NS))
                for i in cl.iterfind("o:CodeListItem", NS)
            ]
            assert coded == [(str(c), str(d)) for c, d in item.codelist]
    age = item_defs["I.DM.AGE"].find("o:MeasurementUnitRef", NS)
    assert age.get("MeasurementUnitOID") == "MU.YEARS"
    ae_group = mdv.xpath("o:ItemGroupDef[@OID='IG.AE.CAUSALITY']", namespaces=NS)[0]
    assert ae_group.get("Repeating") == "Yes"
    assert mdv.xpath("o:FormDef[@OID='F.AE']/@Repeating", namespaces=NS) == ["Yes"]
    [definition] = root.xpath("//o:SignatureDef[@OID='SD.ELIG.ELIGIBLE']", namespaces=NS)
    assert definition.get("Methodology") == "Electronic" and definition.findtext(
        "o:Meaning", namespaces=NS
    )


def test_the_sponsor_gets_no_date_of_birth_or_initials(study, sponsor, schema):
    for archival in (False, True):
        data = export(sponsor, archival=archival)
        root = valid(data, schema)
        assert not root.xpath(
            "//o:ItemData[@ItemOID='I.DM.DATE_OF_BIRTH' or @ItemOID='I.DM.INITIALS']",
            namespaces=NS,
        )
        assert b"1965-05-17" not in data and b'Value="KW"' not in data
        assert root.xpath("//o:ItemData[@ItemOID='I.DM.AGE']", namespaces=NS)  # the age instead
        # The definitions stay: the metadata is the CRF's.
        assert root.xpath("//o:ItemDef[@OID='I.DM.DATE_OF_BIRTH']", namespaces=NS)


def test_a_monitor_of_site_101_gets_no_subject_of_site_202(study, site, schema):
    monitor = make_user(Role.MONITOR, site)
    for archival in (False, True):
        root = valid(export(monitor, archival=archival), schema)
        assert set(subjects_of(root).values()) == {"LOC.101"}
        assert "202-0001" not in subjects_of(root)
        assert root.xpath("//o:Location/@OID", namespaces=NS) == ["LOC.101"]
        assert set(root.xpath("//o:AuditRecord/o:LocationRef/@LocationOID", namespaces=NS)) <= {
            "LOC.101"
        }
    source_ids = root.xpath("//o:AuditRecord/o:SourceID/text()", namespaces=NS)
    assert set(source_ids) == history_ids(monitor) and len(source_ids) == len(set(source_ids))
    assert history_ids(monitor) < history_ids()


# --- archival ------------------------------------------------------------------------------------


def test_the_audit_records_are_the_history_rows_one_to_one(study, data_manager, schema):
    exported = odm.export_for(data_manager, archival=True)
    root = valid(b"".join(exported.chunks()), schema)
    assert root.get("FileType") == "Transactional" and root.get("Archival") == "Yes"
    source_ids = root.xpath("//o:AuditRecord/o:SourceID/text()", namespaces=NS)
    assert len(source_ids) == len(set(source_ids)) == exported.audit_records
    assert set(source_ids) == history_ids()
    for stamp in root.xpath("//o:AuditRecord/o:DateTimeStamp/text()", namespaces=NS):
        assert stamp.endswith("Z")
    users = set(root.xpath("//o:User/@OID", namespaces=NS))
    assert set(root.xpath("//o:AuditRecord/o:UserRef/@UserOID", namespaces=NS)) <= users


def _transaction(root, source_id: str):
    [record] = root.xpath("//o:AuditRecord[o:SourceID=$id]", namespaces=NS, id=source_id)
    return record.getparent(), record


def test_updates_carry_the_changed_items_with_the_reason(study, data_manager, schema):
    root = valid(export(data_manager, archival=True), schema)
    ae = study["ae"]
    first, last = ae.history.order_by("history_date")[:2]
    inserted, _ = _transaction(root, f"adverse_events.adverseevent:{first.history_id}")
    assert inserted.get("TransactionType") == "Insert"
    assert inserted.getparent().get("TransactionType") == "Insert"  # the AE's FormData
    assert inserted.getparent().get("FormRepeatKey") == "1"
    assert value(inserted, "I.AE.GRADE") == "2"
    updated, record = _transaction(root, f"adverse_events.adverseevent:{last.history_id}")
    assert updated.get("TransactionType") == "Update"
    assert record.findtext("o:ReasonForChange", namespaces=NS) == "Grade corrected from source"
    assert [i.get("ItemOID") for i in updated.iterfind("o:ItemData", NS)] == ["I.AE.GRADE"]
    assert value(updated, "I.AE.GRADE") == "3"
    row = AeCausality.history.filter(history_type="~").get()
    causality, _ = _transaction(root, f"adverse_events.aecausality:{row.history_id}")
    assert causality.get("ItemGroupRepeatKey") == "sorafenib"
    assert causality.getparent().get("FormRepeatKey") == "1"
    assert {i.get("ItemOID") for i in causality.iterfind("o:ItemData", NS)} == {
        "I.AE.CAUSALITY.CAUSALITY"
    }


def test_deletions_are_remove_transactions(study, coordinator, data_manager, schema):
    row = study["ae"].causalities.get()
    audited_delete(row, user=coordinator, reason="Entered for the wrong drug")
    root = valid(export(data_manager, archival=True), schema)
    deleted_pk, deleted_key = study["deleted"]
    gone = Subject.history.get(id=deleted_pk, history_type="-")
    subject, record = _transaction(root, f"subjects.subject:{gone.history_id}")
    assert subject.tag == f"{{{odm.NS}}}SubjectData"
    assert subject.get("TransactionType") == "Remove"
    assert subject.get("SubjectKey") == deleted_key
    assert record.findtext("o:ReasonForChange", namespaces=NS) == "Registered twice"
    removed = AeCausality.history.get(history_type="-")
    group, record = _transaction(root, f"adverse_events.aecausality:{removed.history_id}")
    assert (
        group.get("TransactionType") == "Remove" and group.get("ItemGroupRepeatKey") == "sorafenib"
    )
    assert not group.findall("o:ItemData", NS)
    assert record.find("o:UserRef", NS).get("UserOID") == "USR.coordinator"
    # The snapshot no longer has the row.
    assert not valid(export(data_manager), schema).xpath(
        "//o:ItemGroupData[@ItemGroupOID='IG.AE.CAUSALITY']", namespaces=NS
    )


def test_the_e_signature_is_a_signature_on_the_eligibility_form(
    study, data_manager, investigator, schema
):
    root = valid(export(data_manager, archival=True), schema)
    [signature] = root.xpath("//o:FormData[@FormOID='F.ELIG']/o:Signature", namespaces=NS)
    assert signature.find("o:UserRef", NS).get("UserOID") == f"USR.{investigator.username}"
    assert signature.find("o:SignatureRef", NS).get("SignatureOID") == "SD.ELIG.ELIGIBLE"
    signed_at = study["randomized"].eligibility.signatures.get().signed_at
    assert signature.findtext("o:DateTimeStamp", namespaces=NS) == odm.odm_value(signed_at)


def test_the_casebook_sign_off_is_a_signature_on_the_subject_in_the_archival_file(
    study, other_site, other_coordinator, data_manager, schema
):
    # Site 202's screened subject: screen failed, its casebook signed by its investigator.
    investigator = make_user(Role.INVESTIGATOR, other_site)
    subject = add_monitoring_records(
        study["screened"],
        by=other_coordinator,
        data_manager=data_manager,
        investigator=investigator,
    )
    signed = CasebookSignature.objects.get(subject=subject)
    root = valid(export(data_manager, archival=True), schema)
    [definition] = root.xpath("//o:SignatureDef[@OID='SD.DM.CASEBOOK']", namespaces=NS)
    assert definition.findtext("o:Meaning", namespaces=NS) == CASEBOOK_MEANING
    key = subject.subject_identifier
    [signature] = root.xpath(
        f"//o:SubjectData[@SubjectKey='{key}']/o:StudyEventData/o:FormData[@FormOID='F.DM']"
        "/o:Signature",
        namespaces=NS,
    )
    assert signature.find("o:UserRef", NS).get("UserOID") == f"USR.{investigator.username}"
    assert signature.find("o:SignatureRef", NS).get("SignatureOID") == "SD.DM.CASEBOOK"
    assert signature.findtext("o:DateTimeStamp", namespaces=NS) == odm.odm_value(signed.signed_at)


def test_the_file_is_written_subject_by_subject(study, data_manager, monkeypatch):
    monkeypatch.setattr(odm_writer, "FLUSH_EVERY", 1)
    chunks = list(odm.export_for(data_manager).chunks())
    # The header, then one chunk per subject, then the closing tags.
    assert len([c for c in chunks if b"<SubjectData" in c]) == Subject.objects.count()


def test_the_fast_path_writes_what_the_records_say(study, coordinator, data_manager, monkeypatch):
    """The database reads values and writes the text, the oracle reads instances and writes it
    in Python (the archival file: history rows as values or as instances): the same files."""
    ae_services.record_adverse_event(
        study["randomized"],
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Fatigue"),
        grade=1,
        onset_date=site_today(),
        end_date=site_today(),
        outcome="recovered",
        causality={"sorafenib": {"causality": "unlikely", "action_taken": "not_changed"}},
    )

    def files():
        return [
            re.sub(
                rb'(FileOID|CreationDateTime|AsOfDateTime)="[^"]*"',
                b"",
                export(data_manager, archival=a),
            )
            for a in (False, True)
        ]

    fast = files()
    plan = odm_archive._plan

    def instances_only(audited, identifiers):
        found = plan(audited, identifiers)
        found.lookups = None
        return found

    monkeypatch.setattr(odm_archive, "_plan", instances_only)
    odm_oracle.written_by_python(monkeypatch)
    assert files() == fast


def test_the_database_writes_the_adverse_events_as_the_python_path_does(
    study, coordinator, data_manager, sponsor, site, monkeypatch, schema
):
    """The database (PostgreSQL, SQLite) writes the adverse events' FormData text: the file is the
    oracle's byte for byte (escaping, dropped control characters, unicode, empty and null
    values, UTC date-times with and without a fraction, booleans), for every scope."""
    from datetime import UTC, datetime

    from adverse_events.models import AdverseEvent

    second = ae_services.record_adverse_event(
        study["randomized"],
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Fatigue"),
        grade=1,
        onset_date=site_today(),
        end_date=site_today(),
        outcome="recovered",
        causality={"sorafenib": {"causality": "unlikely", "action_taken": "not_changed"}},
    )
    ae = AdverseEvent.objects.get(pk=study["ae"].pk)
    changes = dict(
        verbatim_term="<high> & \"rising\" 'BP' é 高血压 😀\nline\ttab\r\x01\x1f end",
        treatment_details="\x02",  # only a character XML cannot hold: an empty value
        site_aware_at=datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        sae_reported_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    )
    for name, changed in changes.items():
        setattr(ae, name, changed)
    audited_save(ae, user=coordinator, reason="Values no form takes", validate_only=())
    for causality in AeCausality.objects.filter(adverse_event=second):
        audited_delete(causality, user=coordinator, reason="No child rows")
    monitor = make_user(Role.MONITOR, site)

    def stamped_out(data):
        return re.sub(rb'(FileOID|CreationDateTime|AsOfDateTime)="[^"]*"', b"", data)

    for user in (data_manager, sponsor, monitor):
        fast = export(user)
        with monkeypatch.context() as python:
            odm_oracle.written_by_python(python)
            assert stamped_out(export(user)) == stamped_out(fast)
        root = valid(fast, schema)
        (form,) = root.xpath(
            f"//o:FormData[@FormOID='F.AE'][@FormRepeatKey='{study['ae'].ae_number}']",
            namespaces=NS,
        )
        assert value(form, "I.AE.VERBATIM_TERM") == (
            "<high> & \"rising\" 'BP' é 高血压 😀\nline\ttab\r end"
        )
        assert value(form, "I.AE.TREATMENT_DETAILS") == ""
        assert value(form, "I.AE.SITE_AWARE_AT") == "2025-03-04T05:06:07.123456Z"
        assert value(form, "I.AE.SAE_REPORTED_AT") == "2025-03-04T05:06:07Z"
        assert value(form, "I.AE.END_DATE") is None and value(form, "I.AE.ONGOING") == "1"


def test_every_form_is_written_by_the_database_computed_values_as_python_writes_them(
    study, data_manager, monkeypatch, schema
):
    """Values Python computes (a property, the eligibility's evaluation, criteria and signature)
    reach the database's SQL as JSON: the file is the oracle's byte for byte, whatever the
    text."""
    from randomization.models import Allocation

    awkward = "<high> & \"rising\" 'BP' é 高血压 😀\nline\ttab\r\x01\x1f end"
    monkeypatch.setattr(Allocation, "stratum_label", property(lambda allocation: awkward))
    assert odm_layout._Layout.of(records.form_named("allocations"), True).values_path.computed

    def stamped_out(data):
        return re.sub(rb'(FileOID|CreationDateTime|AsOfDateTime)="[^"]*"', b"", data)

    fast = export(data_manager)
    odm_oracle.written_by_python(monkeypatch)
    assert stamped_out(export(data_manager)) == stamped_out(fast)
    root = valid(fast, schema)
    (allocation,) = root.xpath("//o:FormData[@FormOID='F.RAND']", namespaces=NS)
    assert value(allocation, "I.RAND.STRATUM") == awkward.replace("\x01\x1f", "")
    [eligibility] = root.xpath("//o:FormData[@FormOID='F.ELIG']", namespaces=NS)
    assert eligibility.find("o:Signature", NS) is not None
    assert value(eligibility, "I.ELIG.RESULT") == "eligible"


def test_a_record_type_is_declared_once_and_read_alike_by_python_and_the_database(study):
    """The queries' record type is a database expression: the ODM's SQL reads it, the API's
    Python reader of the same declaration gives the same "app_label.model"."""
    form = records.form_named("queries")
    (item,) = (i for i in form.items if i.name == "record_type")
    found = list(form.queryset().annotate(written=item.source))
    assert found
    for query in found:
        expected = f"{query.content_type.app_label}.{query.content_type.model}"
        assert item.value(query) == query.written == expected
    assert odm_layout._Layout.of(form, True).values_path is not None


@pytest.mark.django_db
@pytest.mark.parametrize("stored", [None, "70.5", "70", "-0.25", "1234.56"])
def test_the_database_writes_a_decimal_as_the_python_path_does(stored):
    """A decimal column's text is ``odm_value`` of the Decimal Django reads (SQLite stores a
    REAL and writes NULL as 0 unless told)."""
    from decimal import Decimal

    from django.db import models

    field = models.DecimalField(max_digits=6, decimal_places=2)
    dialect = odm_fragments._dialect(connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {odm_fragments._sql_value('x', field, dialect)} "
            "FROM (SELECT CAST(%s AS DECIMAL(6, 2)) AS x) AS t",
            [stored],
        )
        written = cursor.fetchone()[0]
    expected = None if stored is None else odm.odm_value(Decimal(stored).quantize(Decimal("0.01")))
    assert written == expected


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_queries_read_ahead_by_threads_write_the_same_file_and_clean_up(
    site,
    other_site,
    coordinator,
    investigator,
    other_coordinator,
    data_manager,
    settings,
    monkeypatch,
):
    """Outside a transaction, the adverse events' text is split between queries read ahead by
    threads on connections of their own: the same bytes as one query on the request's
    connection; a reader that stops early leaves no thread and no connection behind."""
    import threading

    from exports import background

    load_starter_terms()
    teams = ((site, coordinator, investigator), (other_site, other_coordinator, None))
    for number, (the_site, staff, signer) in enumerate(teams):
        signer = signer or make_user(Role.INVESTIGATOR, the_site)
        for _ in range(3):
            subject = make_subject_in_arm(
                Arm.B if number else Arm.A, the_site, by=staff, investigator=signer
            )
            ae_services.record_adverse_event(
                subject,
                user=staff,
                term=CtcaeTerm.objects.get(term="Fatigue"),
                grade=1,
                onset_date=site_today(),
                ongoing=True,
                outcome="not_recovered",
                causality={
                    drug: {"causality": "possible", "action_taken": "not_changed"}
                    for drug in (("sorafenib",) if number else ("toripalimab", "bevacizumab"))
                },
            )
    assert not connection.in_atomic_block and background.usable("default")

    def stamped_out(data):
        return re.sub(rb'(FileOID|CreationDateTime|AsOfDateTime)="[^"]*"', b"", data)

    def backends() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            )
            return cursor.fetchone()[0]

    started = []
    rows_ahead = background.rows_ahead
    monkeypatch.setattr(
        background, "rows_ahead", lambda *a, **k: started.append(a) or rows_ahead(*a, **k)
    )
    before = backends()
    settings.EXPORT_QUERY_THREADS = 3
    threaded = export(data_manager)
    assert len(started) == 3  # the largest form: three queries, each a third of the subjects
    settings.EXPORT_QUERY_THREADS = 1
    assert stamped_out(threaded) == stamped_out(export(data_manager))
    assert threaded.count(b'<FormData FormOID="F.AE"') == 6

    settings.EXPORT_QUERY_THREADS = 3
    chunks = odm.export_for(data_manager).chunks()
    next(chunks)
    next(chunks)  # the readers are running
    chunks.close()  # the client went away
    assert not [t for t in threading.enumerate() if t.name == "export-query"]
    assert backends() == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_odm_file_is_one_moment_whatever_is_saved_while_it_streams(
    site, coordinator, investigator, data_manager, settings, monkeypatch
):
    """A subject registered and an AE recorded and changed while the file streams (committed by
    another connection, after the file began and before its forms are read: by the request's
    connection and by the threads on their own) are in none of it: the whole file is the data
    as of its start. The next file has them."""
    import threading

    from exports import background

    load_starter_terms()
    fatigue = CtcaeTerm.objects.get(term="Fatigue")

    def record(subject, grade=1):
        return ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=fatigue,
            grade=grade,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            causality={
                drug: {"causality": "possible", "action_taken": "not_changed"}
                for drug in ("toripalimab", "bevacizumab")
            },
        )

    subjects = [
        make_subject_in_arm(Arm.A, site, by=coordinator, investigator=investigator)
        for _ in range(3)
    ]
    first_ae = record(subjects[0])
    for subject in subjects[1:]:
        record(subject)
    with connection.cursor() as cursor:  # the largest form by PostgreSQL's estimate: the threads'
        cursor.execute("ANALYZE adverse_events_adverseevent")
    started = []
    rows_ahead = background.rows_ahead
    monkeypatch.setattr(
        background, "rows_ahead", lambda *a, **k: started.append(a) or rows_ahead(*a, **k)
    )
    settings.EXPORT_QUERY_THREADS = 2

    def meanwhile():
        try:
            new = make_subject(site, by=coordinator)
            added.append(new.subject_identifier)
            record(subjects[1], grade=2)
            ae_services.update_adverse_event(first_ae, user=coordinator, reason="Worsened", grade=3)
        finally:
            connection.close()  # this thread's own connection

    added: list[str] = []
    chunks = odm.export_for(data_manager).chunks()
    head = next(chunks)  # the file has begun: its moment is taken
    saver = threading.Thread(target=meanwhile)
    saver.start()
    saver.join()
    during = head + b"".join(chunks)
    assert len(started) == 2 and all("adverse_events" in query for _, query, _ in started)
    after = export(data_manager)

    assert added and added[0].encode() not in during and added[0].encode() in after
    assert during.count(b'<FormData FormOID="F.AE"') == 3
    assert after.count(b'<FormData FormOID="F.AE"') == 4
    grades = re.findall(rb'ItemOID="I.AE.GRADE" Value="(\d)"', during)
    assert sorted(grades) == [b"1", b"1", b"1"]
    assert sorted(re.findall(rb'ItemOID="I.AE.GRADE" Value="(\d)"', after)) == [
        b"1",
        b"1",
        b"2",
        b"3",
    ]


def test_the_snapshot_text_is_what_lxml_writes_of_the_same_elements():
    """The snapshot is written as text (not element by element): each ItemGroupData is the
    bytes lxml writes of the same element, whatever the values (escaping, characters XML cannot
    hold, types)."""
    from datetime import UTC, date, datetime
    from decimal import Decimal

    form = records.form_named("adverse-events")
    layout = odm_layout._Layout.of(form, True)
    awkward = [
        "<high> & \"rising\" 'BP' é 高血压 😀\nline\ttab\r\x01\x1f end",
        "plain",
        "",
        None,
        True,
        False,
        0,
        12,
        Decimal("1.50"),
        2.5e-7,
        date(2025, 3, 4),
        datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        "\x02",
    ]
    values = (awkward * 3)[: len(layout.main.items)]
    for group, attrs in ((layout.main, {}), (layout.main, {"ItemGroupRepeatKey": 'a"&<b>'})):
        element = etree.Element("ItemGroupData", ItemGroupOID=group.oid, **attrs)
        for oid, given in zip(group.oids, values, strict=True):
            text = odm.odm_value(given)
            if text is not None:
                etree.SubElement(element, "ItemData", ItemOID=oid, Value=text)
        extra = "".join(f' {k}="{odm_values._attribute(v)}"' for k, v in attrs.items())
        assert odm_oracle.group_text(group, values, extra).encode() == etree.tostring(
            element, encoding="utf-8"
        )
    empty = etree.tostring(
        etree.Element("ItemGroupData", ItemGroupOID=layout.main.oid), encoding="utf-8"
    )
    assert odm_oracle.group_text(layout.main, [None] * len(layout.main.items)).encode() == empty


# --- API -----------------------------------------------------------------------------------------


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_the_api_streams_the_file_with_the_exports_permission(
    study, site, sponsor, coordinator, schema
):
    response = api(sponsor).get("/api/v1/exports/odm/")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"].startswith("application/xml")
    assert response["Content-Disposition"].startswith('attachment; filename="odm-snapshot-')
    root = valid(b"".join(response.streaming_content), schema)
    assert not root.xpath("//o:ItemData[@ItemOID='I.DM.DATE_OF_BIRTH']", namespaces=NS)

    archival = api(sponsor).get(
        "/api/v1/exports/odm/", {"archival": "1"}, HTTP_ACCEPT="application/xml"
    )
    assert archival.status_code == 200
    assert valid(b"".join(archival.streaming_content), schema).get("Archival") == "Yes"

    monitor = make_user(Role.MONITOR, site)
    client = APIClient()
    client.force_login(monitor)  # the session works as well as a token
    mine = valid(b"".join(client.get("/api/v1/exports/odm/").streaming_content), schema)
    assert set(subjects_of(mine).values()) == {"LOC.101"}

    bad = api(sponsor).get("/api/v1/exports/odm/", {"archival": "maybe"})
    assert bad.status_code == 400 and "archival=1" in bad.json()["archival"]
    denied = api(coordinator).get("/api/v1/exports/odm/")
    assert denied.status_code == 403 and "sponsor exports" in denied.json()["detail"]
    assert APIClient().get("/api/v1/exports/odm/").status_code == 401
    as_xml = api(coordinator).get("/api/v1/exports/odm/", HTTP_ACCEPT="application/xml")
    assert as_xml.status_code == 403 and "sponsor exports" in as_xml.json()["detail"]


def test_a_file_of_some_forms_holds_their_data_and_the_whole_metadata(
    study, sponsor, data_manager, schema
):
    """``forms=adverse-events``: every subject (the subjects' form always), their adverse events
    and causality, no other form's data; the MetaDataVersion is the study's; the archival file
    of the same forms carries exactly their history rows; bad names get a 400 with the choices."""
    response = api(sponsor).get("/api/v1/exports/odm/", {"forms": "adverse-events"})
    assert response.status_code == 200
    root = valid(b"".join(response.streaming_content), schema)
    full = valid(export(sponsor), schema)
    assert subjects_of(root) == subjects_of(full)
    forms = set(root.xpath("//o:FormData/@FormOID", namespaces=NS))
    assert forms == {"F.DM", "F.AE"}
    assert root.xpath("//o:FormDef/@OID", namespaces=NS) == full.xpath(
        "//o:FormDef/@OID", namespaces=NS
    )
    (ae,) = root.xpath("//o:FormData[@FormOID='F.AE']", namespaces=NS)
    (same,) = full.xpath("//o:FormData[@FormOID='F.AE']", namespaces=NS)
    assert etree.tostring(ae) == etree.tostring(same)
    assert not root.xpath("//o:Signature", namespaces=NS)  # eligibility's: not asked for

    archival = odm.export_for(data_manager, archival=True, forms=["adverse-events"])
    archived = valid(b"".join(archival.chunks()), schema)
    wanted = {
        f"{audited.label}:{history_id}"
        for audited in odm.audited_models(odm.selected_forms(["adverse-events"]))
        for history_id in audited.history(odm.Scope.of(data_manager)).values_list(
            "history_id", flat=True
        )
    }
    assert set(archived.xpath("//o:SourceID/text()", namespaces=NS)) == wanted
    assert {s.split(":")[0] for s in wanted} == {
        "subjects.subject",
        "adverse_events.adverseevent",
        "adverse_events.aecausality",
    }

    for bad, sentence in (
        ({"forms": "adverse-events,labs"}, "Unknown form: labs. Choose among: subjects,"),
        ({"forms": " , "}, "Name at least one form"),
    ):
        refused = api(sponsor).get("/api/v1/exports/odm/", bad)
        assert refused.status_code == 400 and sentence in refused.json()["forms"]


# --- command -------------------------------------------------------------------------------------


def test_the_command_writes_a_valid_file(study, site, tmp_path, schema, capsys):
    path = tmp_path / "study.xml"
    call_command("export_odm", "-o", str(path))
    root = valid(path.read_bytes(), schema)
    assert set(subjects_of(root)) == set(
        Subject.objects.values_list("subject_identifier", flat=True)
    )
    assert not root.xpath("//o:ItemData[@ItemOID='I.DM.DATE_OF_BIRTH']", namespaces=NS)
    assert "Wrote 2 subjects" in capsys.readouterr().err

    call_command("export_odm", "-o", str(path), "--with-identifiers", "--archival")
    root = valid(path.read_bytes(), schema)
    assert root.xpath("//o:ItemData[@ItemOID='I.DM.DATE_OF_BIRTH']", namespaces=NS)
    assert set(root.xpath("//o:SourceID/text()", namespaces=NS)) == history_ids()

    monitor = make_user(Role.MONITOR, site)
    call_command("export_odm", "-o", str(path), "--user", monitor.username)
    assert set(subjects_of(valid(path.read_bytes(), schema)).values()) == {"LOC.101"}
    call_command("export_odm", "-o", str(path), "--forms", "adverse-events,allocations")
    forms = set(valid(path.read_bytes(), schema).xpath("//o:FormData/@FormOID", namespaces=NS))
    assert forms == {"F.DM", "F.AE", "F.RAND"}
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind

    out = io.StringIO()
    call_command("export_odm", stdout=out)  # no -o: standard output
    assert set(subjects_of(valid(out.getvalue().encode(), schema)).values()) == {
        "LOC.101",
        "LOC.202",
    }


def test_the_command_refuses_with_a_sentence(study, coordinator, tmp_path):
    with pytest.raises(CommandError, match="There is no user 'nobody'"):
        call_command("export_odm", "--user", "nobody")
    with pytest.raises(CommandError, match="may not read the sponsor exports"):
        call_command("export_odm", "--user", coordinator.username)
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("export_odm", "-o", str(tmp_path / "no-such-folder" / "study.xml"))
    with pytest.raises(CommandError, match="--with-identifiers is for the operator"):
        call_command("export_odm", "--user", coordinator.username, "--with-identifiers")
    with pytest.raises(CommandError, match="Unknown form: labs. Choose among: subjects,"):
        call_command("export_odm", "--forms", "labs")
