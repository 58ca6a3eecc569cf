"""The sponsor's read API generated from the export registry: one endpoint per exported form
(``/api/v1/<form>/``), the audit trail, the deletions feed; JSON and streamed CSV.

Every endpoint, every role: the scope (a site's people see their sites only, the study team all),
no direct identifier for the sponsor's people, 401 without credentials; ``updated_since`` exact
(a child's change brings its record, an unchanged record stays out); the deletions feed exact;
the CSV parses and holds the JSON's rows; the audit trail matches the history one to one with
field-level old -> new; pages stable; bad parameters a 400 with a sentence; the SQL query count
of a page does not grow with its size.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, time, timedelta
from datetime import timezone as tz
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlparse

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import DateTimeField, Value
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent, AeCausality, CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core import access
from core.audit import HIDDEN_VALUE, audited_save
from core.roles import Role
from eligibility.criteria import CRITERIA
from exports import audit_trail, copy_csv, flatten, records
from exports.copy_csv import UtcIso
from exports.extras import reader_items
from exports.formatting import csv_text, utc_iso
from queries import services as query_services
from randomization.arms import Arm
from subjects import services as subject_services
from subjects.models import Site, Subject

from .builders import make_site, make_subject, make_subject_in_arm, make_user, site_today
from .builders.efficacy import add_efficacy_records
from .builders.monitoring import add_monitoring_records
from .builders.survival import add_survival_crfs
from .builders.treatment import add_exposure_records
from .builders.worlds import built_once, fresh, taken_from_world

pytestmark = pytest.mark.django_db

FORMS = [form.name for form in records.export_forms()]
FEEDS = ["audit-trail", "deletions"]
LONG_AGO = "2000-01-01T00:00:00Z"
CAUSALITY_B = {"sorafenib": {"causality": "possible", "action_taken": "reduced"}}


# --- data ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_throttle_carry_over():
    """The throttles count in the cache: each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


def api(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token = Token.objects.get_or_create(user=user)[0]
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def record_ae(subject, user, *, grade=2, term="Hypertension"):
    return ae_services.record_adverse_event(
        subject,
        user=user,
        term=CtcaeTerm.objects.get(term=term),
        grade=grade,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality=CAUSALITY_B,
    )


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Two sites, each with a randomized subject (arm B) with an AE and a data query, and a
    subject in screening: every form has rows at both sites. Built once for the module."""
    with built_once(django_db_blocker):
        load_starter_terms()
        site, other_site = make_site("101"), make_site("202")
        people = {
            "site": site,
            "other_site": other_site,
            "coordinator": make_user(Role.SITE_STAFF, site, username="coordinator"),
            "other_coordinator": make_user(Role.SITE_STAFF, other_site, username="other"),
            "data_manager": make_user(Role.DATA_MANAGER, username="dm", is_staff=True),
            "sponsor": make_user(Role.SPONSOR, username="sponsor"),
        }
        found = {}
        for code, where, by in (
            ("101", site, people["coordinator"]),
            ("202", other_site, people["other_coordinator"]),
        ):
            subject = make_subject_in_arm(Arm.B, where, by=by)
            ae = record_ae(subject, by)
            add_efficacy_records(subject, by=by)  # lesions, assessments (RECIST)
            add_exposure_records(subject, by=by)  # cycle, sorafenib period
            subject = add_survival_crfs(subject, by=by)  # end of treatment, follow-up, death
            query = query_services.raise_query(
                subject, field="sex", message="Please check the sex.", user=people["data_manager"]
            )
            screening = make_subject(where, by=by)
            # Every form has rows: the monitoring ones too (screen failed, signed, verified).
            screening = add_monitoring_records(
                screening, by=by, data_manager=people["data_manager"]
            )
            found[code] = {"subject": subject, "ae": ae, "query": query, "screening": screening}
        yield SimpleNamespace(study=found, **people)


@pytest.fixture
def study(world):
    """The world's records, as the database holds them for this test."""
    return {
        code: {name: fresh(record) for name, record in found.items()}
        for code, found in world.study.items()
    }


# The conftest's people, taken from the world (theirs would be a second site 101).
site, other_site, coordinator, other_coordinator, data_manager, sponsor = taken_from_world(
    "site", "other_site", "coordinator", "other_coordinator", "data_manager", "sponsor"
)


@pytest.fixture
def monitor_101(site):
    return make_user(Role.MONITOR, site)


ROLES = {
    Role.SITE_STAFF: "site",
    Role.INVESTIGATOR: "site",
    Role.MONITOR: "site",
    Role.DATA_MANAGER: "all",
    Role.SPONSOR: "all",
    Role.STATISTICIAN: "all",
}


def user_of(role, site):
    return make_user(role, site) if ROLES[role] == "site" else make_user(role)


def get(client, path, **query):
    response = client.get(path, query)
    assert response.status_code == 200, response.content
    return response.json()


def all_rows(client, path, **query) -> list[dict]:
    """Every row of a list, page after page (its next links)."""
    rows, page = [], get(client, path, **query)
    while True:
        rows += page["results"]
        if not page["next"]:
            return rows
        page = get(client, page["next"])


def csv_rows(response) -> tuple[list[str], list[dict]]:
    assert response.status_code == 200, response.content if not response.streaming else ""
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    reader = csv.DictReader(io.StringIO(text))
    return reader.fieldnames, list(reader)


def site_of(row: dict) -> str:
    return row["site"] if "site" in row else row["code"]


def path_of(name: str) -> str:
    return f"/api/v1/{name}/"


def list_query(name: str) -> dict:
    return {"since": LONG_AGO} if name == "deletions" else {}


def sentence(response) -> str:
    """The one sentence of a 400."""
    assert response.status_code == 400, response.content
    [(_, messages)] = response.json().items()
    [text] = messages if isinstance(messages, list) else [messages]
    assert text.endswith(".") and len(text.split()) >= 4, text
    return text


# --- the endpoints come from the registry --------------------------------------------------------


def expected_keys(form, *, identifiers: bool) -> list[str]:
    items = [item.name for item in form.visible_items(identifiers=identifiers)]
    readers = [reader.name for reader in reader_items(form)]
    return (["id"] if "id" not in items else []) + items + readers + [g.name for g in form.children]


@pytest.mark.parametrize("name", FORMS)
def test_every_form_has_an_endpoint_whose_fields_are_its_items(study, data_manager, sponsor, name):
    form = records.form_named(name)
    for user, identifiers in ((data_manager, True), (sponsor, False)):
        rows = get(api(user), path_of(name))["results"]
        assert rows, name
        assert all(list(row) == expected_keys(form, identifiers=identifiers) for row in rows)
        for group in form.children:
            for child in (c for row in rows for c in row[group.name]):
                assert list(child) == [item.name for item in group.items]


def test_an_adverse_event_row_holds_its_coding_and_causality(study, sponsor):
    ae = study["101"]["ae"]
    [row] = [r for r in get(api(sponsor), path_of("adverse-events"))["results"] if r["id"] == ae.pk]
    assert (row["subject"], row["site"], row["ae_number"], row["term"], row["grade"]) == (
        ae.subject.subject_identifier,
        "101",
        1,
        "Hypertension",
        2,
    )
    assert (row["ongoing"], row["end_date"], row["onset_date"]) == (
        True,
        None,
        ae.onset_date.isoformat(),
    )
    assert row["updated"].endswith("Z")
    assert row["causality"] == [
        {"drug": "sorafenib", "causality": "possible", "related": True, "action_taken": "reduced"}
    ]
    detail = get(api(sponsor), f"/api/v1/adverse-events/{ae.pk}/")
    assert detail == row


def test_the_detail_routes_use_the_forms_own_keys(study, sponsor):
    subject = study["101"]["subject"]
    client = api(sponsor)
    for name, key in (
        ("subjects", subject.subject_identifier),
        ("eligibility", subject.subject_identifier),
        ("allocations", subject.subject_identifier),
        ("sites", "101"),
        ("queries", study["101"]["query"].pk),
    ):
        row = get(client, f"/api/v1/{name}/{key}/")
        assert site_of(row) == "101", name
    assert client.get("/api/v1/subjects/999-9999/").status_code == 404
    assert client.get("/api/v1/adverse-events/not-a-number/").status_code == 404
    # Digits that are not 0-9 (superscript two, Arabic-Indic three) and a number no key reaches:
    # no such record, not a 500.
    for key in ("\u00b2", "\u0663", "9" * 30):
        assert client.get(f"/api/v1/adverse-events/{key}/").status_code == 404, key


# --- scope and identifiers, every role, every endpoint -------------------------------------------


def visible_sites(client, name) -> set[str]:
    if name == "audit-trail":
        return {row["site"] for row in all_rows(client, path_of(name))}
    if name == "deletions":
        return set()
    return {site_of(row) for row in all_rows(client, path_of(name))}


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_reads_its_scope_in_json_and_csv(study, site, role, monkeypatch):
    user = user_of(role, site)
    client = api(user)
    if not access.can_read_exports(user):  # site staff, investigators: not the exports
        for name in FORMS + FEEDS:
            denied = client.get(path_of(name), list_query(name))
            assert denied.status_code == 403, name
            assert "sponsor exports" in denied.json()["detail"]
            assert (
                client.get(path_of(name), {**list_query(name), "format": "csv"}).status_code == 403
            )
        # and were they given the exports, they would still see their own site only
        monkeypatch.setattr(access, "can_read_exports", lambda user: True)
    expected = {"101"} if ROLES[role] == "site" else {"101", "202"}
    for name in FORMS + ["audit-trail"]:
        assert visible_sites(client, name) == expected, name
        _, rows = csv_rows(client.get(path_of(name), {"format": "csv"}))
        assert {site_of(row) for row in rows} == expected, name


@pytest.mark.parametrize("role", list(ROLES))
def test_direct_identifiers_only_for_roles_that_see_them(study, site, role, monkeypatch):
    monkeypatch.setattr(access, "can_read_exports", lambda user: True)
    user = user_of(role, site)
    shown = access.sees_direct_identifiers(user)
    assert shown == (role not in (Role.SPONSOR, Role.STATISTICIAN))
    client = api(user)
    subject = study["101"]["subject"]
    row = get(client, f"/api/v1/subjects/{subject.subject_identifier}/")
    header, _ = csv_rows(client.get(path_of("subjects"), HTTP_ACCEPT="text/csv"))
    for name in ("initials", "date_of_birth"):
        assert (name in row) is shown and (name in header) is shown
    if shown:
        assert row["date_of_birth"] == subject.date_of_birth.isoformat()
    trail = all_rows(client, path_of("audit-trail"), model="subjects.subject")
    births = [c for r in trail for c in r["changes"] if c["field"] == "date_of_birth"]
    assert births and all((c["new"] == HIDDEN_VALUE) is not shown for c in births)
    assert (subject.date_of_birth.isoformat() in json.dumps(trail)) is shown


def test_without_credentials_every_endpoint_is_a_401(study):
    for name in FORMS + FEEDS:
        assert APIClient().get(path_of(name), list_query(name)).status_code == 401, name
        assert APIClient().get(path_of(name), {"format": "csv"}).status_code == 401, name


def test_session_authentication_works_as_well_as_tokens(study, client, data_manager):
    client.force_login(data_manager)
    assert client.get(path_of("subjects")).status_code == 200
    browsable = client.get(path_of("subjects"), HTTP_ACCEPT="text/html")
    assert browsable.status_code == 200 and "101-0001" in browsable.content.decode()


# --- CSV -----------------------------------------------------------------------------------------


def flat(form, row: dict) -> dict:
    """What the CSV holds of a JSON row: the items as text, pivoted child groups (one column
    per key value and item), other child groups and reader items as JSON text."""
    out = {}
    for name, value in row.items():
        group = next((g for g in form.children if g.name == name), None)
        if group is None and not isinstance(value, dict | list):
            out[name] = csv_text(value)
        elif group is not None and group.key:
            for child in value:
                key = child[group.key]
                for item, cell in child.items():
                    if item != group.key:
                        out[f"{group.name}_{key}_{item}"] = csv_text(cell)
        else:
            out[name] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out


@pytest.mark.parametrize("name", FORMS)
def test_the_csv_holds_the_json_rows(study, data_manager, name):
    form = records.form_named(name)
    client = api(data_manager)
    rows = all_rows(client, path_of(name))
    for how in ({"format": "csv"}, {"HTTP_ACCEPT": "text/csv"}):
        response = client.get(path_of(name), **({"data": how} if "format" in how else how))
        assert response["Content-Disposition"] == f'attachment; filename="{name}.csv"'
        header, cells = csv_rows(response)
        assert len(cells) == len(rows) > 0
        for row, line in zip(rows, cells, strict=True):
            expected = flat(form, row)
            assert {k: line[k] for k in expected} == expected
            assert set(line) - set(expected) <= {c for c in header if c.count("_") >= 2}
    plain_keys = [k for k in rows[0] if k not in {g.name for g in form.children}]
    assert header[: len(plain_keys)] == plain_keys  # then the child groups' columns


def test_child_groups_pivot_on_their_keys_and_the_thread_is_json(study, data_manager):
    client = api(data_manager)
    header, [line, *_] = csv_rows(client.get(path_of("adverse-events"), {"format": "csv"}))
    drugs = ["toripalimab", "bevacizumab", "sorafenib"]
    assert [c for c in header if c.startswith("causality_")] == [
        f"causality_{drug}_{item}"
        for drug in drugs
        for item in ("causality", "related", "action_taken")
    ]
    assert (line["causality_sorafenib_causality"], line["causality_sorafenib_related"]) == (
        "possible",
        "true",
    )
    assert line["causality_toripalimab_causality"] == ""  # not a drug of arm B
    header, [line, *_] = csv_rows(client.get(path_of("eligibility"), {"format": "csv"}))
    assert [c for c in header if c.startswith("criteria_")] == [
        f"criteria_{c.code}_{item}" for c in CRITERIA for item in ("kind", "outcome", "reason")
    ]
    assert line["criteria_IN01_outcome"] == "pass" and line["result"] == "eligible"
    header, lines = csv_rows(client.get(path_of("queries"), {"format": "csv"}))
    thread = json.loads(lines[0]["thread"])
    assert thread[0]["kind"] == "raised" and thread[0]["at"].endswith("Z")
    assert (
        json.loads(lines[0]["value_snapshot"])
        == get(client, path_of("queries"))["results"][0]["value_snapshot"]
    )


def test_csv_cells_are_iso_utc_true_false_and_empty(study, data_manager):
    _, lines = csv_rows(api(data_manager).get(path_of("adverse-events"), {"format": "csv"}))
    line = lines[0]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", line["onset_date"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z", line["updated"])
    assert (line["ongoing"], line["serious"], line["end_date"]) == ("true", "false", "")


def test_csv_honours_filters_and_updated_since(study, data_manager):
    client = api(data_manager)
    _, lines = csv_rows(client.get(path_of("subjects"), {"format": "csv", "site": "202"}))
    assert {line["site"] for line in lines} == {"202"} and len(lines) == 2
    _, lines = csv_rows(
        client.get(path_of("subjects"), {"format": "csv", "updated_since": "2999-01-01"})
    )
    assert lines == []
    bad = client.get(path_of("subjects"), {"format": "csv", "status": "lost"})
    assert bad["Content-Type"] == "application/json" and "status" in bad.json()
    sentence(bad)


def test_the_csv_is_streamed_row_by_row_never_held_whole(study, data_manager, monkeypatch):
    monkeypatch.setattr(copy_csv, "ENABLED", False)  # the Python path (PostgreSQL: COPY's)
    monkeypatch.setattr(flatten.csv_lines, "__defaults__", (1,))  # one row per chunk
    read = []
    stream = records.stream
    monkeypatch.setattr(records, "stream", lambda qs: (read.append(r) or r for r in stream(qs)))
    response = api(data_manager).get(path_of("adverse-events"), {"format": "csv"})
    assert response.streaming and read == []  # nothing read before the response is consumed
    chunks = iter(response.streaming_content)
    assert next(chunks).decode().startswith("id,subject,site,ae_number")
    next(chunks)
    assert len(read) == 1  # one record read for one row written
    assert len(list(chunks)) == AdverseEvent.objects.count() - 1


# --- updated_since and the deletions feed --------------------------------------------------------


def just_after_now() -> str:
    return (timezone.now() + timedelta(microseconds=1)).isoformat()


def test_updated_since_brings_a_record_whose_child_changed_and_nothing_else(
    study, coordinator, data_manager
):
    client = api(data_manager)
    since = just_after_now()
    for name in FORMS:
        assert get(client, path_of(name), updated_since=since)["results"] == [], name
    ae = study["101"]["ae"]
    causality = AeCausality.objects.get(adverse_event=ae, drug="sorafenib")
    causality.causality = "probable"
    audited_save(causality, user=coordinator, reason="Causality reassessed")  # the child only
    assert not ae.history.filter(history_date__gte=datetime.fromisoformat(since)).exists()
    [row] = get(client, path_of("adverse-events"), updated_since=since)["results"]
    assert row["id"] == ae.pk and row["causality"][0]["causality"] == "probable"
    _, lines = csv_rows(
        client.get(path_of("adverse-events"), {"updated_since": since, "format": "csv"})
    )
    assert [int(line["id"]) for line in lines] == [ae.pk]
    for name in ("subjects", "allocations", "sites", "queries"):
        assert get(client, path_of(name), updated_since=since)["results"] == [], name


def test_updated_since_brings_a_changed_record_and_a_new_one(study, coordinator, data_manager):
    client = api(data_manager)
    since = just_after_now()
    subject = study["101"]["screening"]
    subject_services.update_demographics(subject, user=coordinator, reason="Typo", sex="F")
    new = make_subject(study["101"]["subject"].site, by=coordinator)
    rows = get(client, path_of("subjects"), updated_since=since)["results"]
    assert [r["subject_identifier"] for r in rows] == sorted(
        [subject.subject_identifier, new.subject_identifier]
    )
    date_only = get(client, path_of("subjects"), updated_since=timezone.localdate().isoformat())
    assert len(date_only["results"]) == Subject.objects.count()


def test_updated_since_pages_the_same_records_from_a_short_or_a_long_history(
    study, coordinator, data_manager, monkeypatch
):
    """A page reads the changed records' keys first when the history since then is short, and
    lets the database hash a long one: the same records either way."""
    client = api(data_manager)
    since = just_after_now()
    ae_services.update_adverse_event(study["101"]["ae"], user=coordinator, reason="Typo", grade=3)
    for value in (LONG_AGO, since):
        short = {n: all_rows(client, path_of(n), updated_since=value, page_size=1) for n in FORMS}
        monkeypatch.setattr(records, "FEW_CHANGES", 0)
        long = {n: all_rows(client, path_of(n), updated_since=value, page_size=1) for n in FORMS}
        monkeypatch.undo()
        assert short == long
    assert [r["id"] for r in short["adverse-events"]] == [study["101"]["ae"].pk]


def test_the_deletions_feed_lists_exactly_the_deleted_records(
    study, site, coordinator, other_coordinator, data_manager, monitor_101
):
    kept = make_subject(site, by=coordinator, consented=False)
    since = just_after_now()
    gone = [make_subject(site, by=coordinator, consented=False) for _ in range(3)]
    foreign = make_subject(study["202"]["subject"].site, by=other_coordinator, consented=False)
    ids, foreign_id = [s.pk for s in gone], foreign.pk
    for subject in gone:
        subject_services.delete_subject(subject, user=coordinator, reason="Registered twice")
    subject_services.delete_subject(foreign, user=other_coordinator, reason="Wrong site")
    rows = get(api(data_manager), path_of("deletions"), since=since)["results"]
    assert [(r["export"], r["record_id"]) for r in rows] == [("subjects", i) for i in ids] + [
        ("subjects", foreign_id)
    ]
    assert kept.pk not in {r["record_id"] for r in rows}
    assert rows[0]["deleted_by"] == "coordinator" and rows[0]["reason"] == "Registered twice"
    assert rows[0]["deleted_at"].endswith("Z")
    paged = all_rows(api(data_manager), path_of("deletions"), since=since, page_size=1)
    assert paged == rows
    mine = get(api(monitor_101), path_of("deletions"), since=since)["results"]
    assert [r["record_id"] for r in mine] == ids  # not site 202's
    _, lines = csv_rows(
        api(data_manager).get(path_of("deletions"), {"since": since, "format": "csv"})
    )
    assert [int(line["record_id"]) for line in lines] == [r["record_id"] for r in rows]
    assert get(api(data_manager), path_of("deletions"), since=just_after_now())["results"] == []


def test_the_deletions_feed_needs_a_since(data_manager):
    client = api(data_manager)
    assert "since" in sentence(client.get(path_of("deletions")))
    assert "since" in sentence(client.get(path_of("deletions"), {"since": "2024-02-30"}))


# --- the audit trail -----------------------------------------------------------------------------


def history_keys(model, **filters) -> list[tuple]:
    return [
        (model._meta.label_lower, h.history_id, h.get_history_type_display().lower())
        for h in model.history.filter(**filters).order_by("history_date", "history_id")
    ]


def test_the_audit_trail_matches_the_history_one_to_one(study, coordinator, data_manager):
    ae = study["101"]["ae"]
    ae_services.update_adverse_event(ae, user=coordinator, reason="Worse", grade=3)
    causality = AeCausality.objects.get(adverse_event=ae, drug="sorafenib")
    causality.causality = "probable"
    audited_save(causality, user=coordinator, reason="Reassessed")
    client = api(data_manager)

    rows = all_rows(client, path_of("audit-trail"), model="adverse_events.adverseevent")
    mine = [r for r in rows if r["record_id"] == ae.pk]
    assert [(r["model"], r["history_id"], r["type"]) for r in mine] == history_keys(
        AdverseEvent, id=ae.pk
    )
    created, changed = mine
    assert (created["subject"], created["site"], created["user"]) == (
        ae.subject.subject_identifier,
        "101",
        "coordinator",
    )
    assert {"field": "grade", "old": None, "new": 2} in created["changes"]
    assert changed["changes"] == [{"field": "grade", "old": 2, "new": 3}]
    assert changed["reason"] == "Worse"
    history = ae.history.get(history_id=changed["history_id"])
    assert datetime.fromisoformat(changed["at"]) == history.history_date
    assert changed["at"].endswith("Z")

    [reassessed] = get(
        client, path_of("audit-trail"), model="adverse_events.aecausality", type="changed"
    )["results"]
    assert reassessed["changes"] == [{"field": "causality", "old": "possible", "new": "probable"}]
    assert (reassessed["subject"], reassessed["reason"]) == (
        ae.subject.subject_identifier,
        "Reassessed",
    )

    everything = all_rows(client, path_of("audit-trail"), page_size=7)
    expected = sorted(
        (row["at"], row["model"], row["history_id"]) for row in everything
    )  # the order: time, model, history row
    assert [(r["at"], r["model"], r["history_id"]) for r in everything] == expected
    in_database = {
        (model._meta.label_lower, h.history_id)
        for model in (AdverseEvent, AeCausality, Subject)
        for h in model.history.all()
    }
    seen = {(r["model"], r["history_id"]) for r in everything}
    assert in_database <= seen and len(seen) == len(everything)


def test_the_audit_trail_filters_and_scope(study, data_manager, monitor_101):
    client = api(data_manager)
    subject = study["202"]["subject"]
    rows = all_rows(client, path_of("audit-trail"), subject=subject.subject_identifier)
    assert rows and {r["subject"] for r in rows} == {subject.subject_identifier}
    assert {r["model"] for r in rows} >= {
        "subjects.subject",
        "eligibility.eligibilityassessment",
        "eligibility.eligibilitysignature",
        "randomization.allocation",
        "adverse_events.adverseevent",
        "adverse_events.aecausality",
        "queries.dataquery",
        "queries.querymessage",
    }
    assert {r["site"] for r in all_rows(client, path_of("audit-trail"), site="202")} == {"202"}
    assert get(client, path_of("audit-trail"), since="2999-01-01")["results"] == []
    monitors = all_rows(api(monitor_101), path_of("audit-trail"))
    assert monitors and {r["site"] for r in monitors} == {"101"}
    sites = {
        r["site"] for r in monitors if r["model"] in ("subjects.site", "subjects.sitemembership")
    }
    assert sites == {"101"}
    assert "model" in sentence(client.get(path_of("audit-trail"), {"model": "auth.user"}))
    assert "type" in sentence(client.get(path_of("audit-trail"), {"type": "edited"}))


@pytest.fixture
def frozen_clock(monkeypatch):
    """Every history row made from now on has the same time (ties across models and rows)."""
    fixed = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: fixed)
    return fixed


def walk_back(client, page) -> list[dict]:
    rows = []
    while page["previous"]:
        page = get(client, page["previous"])
        rows = page["results"] + rows
    return rows


def test_audit_trail_pages_see_every_row_once_even_at_equal_times(
    site, coordinator, data_manager, frozen_clock
):
    for _ in range(4):
        subject = make_subject(site, by=coordinator)
        make_user(Role.MONITOR, make_site())  # a site and a membership: other models
        subject_services.update_demographics(subject, user=coordinator, reason="Typo", sex="F")
    client = api(data_manager)
    since = {"since": frozen_clock.isoformat()}
    whole = get(client, path_of("audit-trail"), page_size=1000, **since)["results"]
    assert len({r["at"] for r in whole}) == 1 and len(whole) >= 12  # all at one time
    assert len({r["model"] for r in whole}) == 3
    for size in (1, 2, 5):
        assert all_rows(client, path_of("audit-trail"), page_size=size, **since) == whole
    last = get(client, path_of("audit-trail"), page_size=5, **since)
    while last["next"]:
        last = get(client, last["next"])
    assert walk_back(client, last) + last["results"] == whole


# --- pagination and ordering of the forms --------------------------------------------------------


@pytest.fixture
def many_aes(site, coordinator):
    """Eight AEs of a new subject at 101 (the lists hold the world's two AEs too)."""
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    aes = []
    for grade, term in ((1, "Fatigue"), (3, "Hypertension"), (2, "Nausea"), (3, "Diarrhea")) * 2:
        aes.append(record_ae(subject, coordinator, grade=grade, term=term))
    for ae in aes[::3]:  # some have ended: end_date is nullable
        ae_services.update_adverse_event(
            ae,
            user=coordinator,
            reason="Resolved",
            ongoing=False,
            end_date=site_today(),
            outcome="recovered",
        )
    return aes


@pytest.mark.parametrize(
    "ordering", [None, "grade", "-grade,term", "end_date", "-end_date", "-updated"]
)
def test_pages_are_stable_in_every_ordering_both_ways(many_aes, data_manager, ordering):
    client = api(data_manager)
    query = {} if ordering is None else {"ordering": ordering}
    whole = get(client, path_of("adverse-events"), page_size=1000, **query)["results"]
    assert sorted(r["id"] for r in whole) == sorted(
        AdverseEvent.objects.values_list("id", flat=True)
    )
    assert {ae.pk for ae in many_aes} < {r["id"] for r in whole}
    if ordering == "grade":
        assert [r["grade"] for r in whole] == sorted(r["grade"] for r in whole)
        ids_by_grade = [r["id"] for r in whole]
        assert ids_by_grade == [r["id"] for r in sorted(whole, key=lambda r: (r["grade"], r["id"]))]
    if ordering == "end_date":
        ended = [r for r in whole if r["end_date"]]
        assert whole[: len(ended)] == ended  # nulls last
    for size in (1, 3):
        assert all_rows(client, path_of("adverse-events"), page_size=size, **query) == whole
    last = get(client, path_of("adverse-events"), page_size=3, **query)
    while last["next"]:
        last = get(client, last["next"])
    assert walk_back(client, last) + last["results"] == whole


def test_a_page_is_in_the_order_of_the_records_ids_and_the_csv_in_the_casebooks(
    many_aes, data_manager
):
    """Pages walk the primary key's index (one range per page whatever the study's size); the
    CSV, the whole list at once, keeps the casebook's order: by site, subject, AE number."""
    client = api(data_manager)
    whole = get(client, path_of("adverse-events"), page_size=1000)["results"]
    assert [r["id"] for r in whole] == sorted(AdverseEvent.objects.values_list("id", flat=True))
    _, lines = csv_rows(client.get(path_of("adverse-events"), {"format": "csv"}))
    casebook = [(line["site"], line["subject"], int(line["ae_number"])) for line in lines]
    assert casebook == sorted(casebook) and len(casebook) == len(whole)


@pytest.mark.parametrize("ordering", [None, "updated", "-updated", "-onset_date,grade"])
def test_pages_see_every_record_once_when_their_times_are_equal(
    site, coordinator, data_manager, frozen_clock, ordering
):
    """Records saved at one instant (equal ``updated``, ``created``, history dates): walking
    every page forwards and back, at any page size, gives each once, in one order."""
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    made = {record_ae(subject, coordinator, grade=g).pk for g in (1, 2, 3, 1, 2)}
    client = api(data_manager)
    query = {"updated_since": frozen_clock.isoformat()}
    if ordering:
        query["ordering"] = ordering
    whole = get(client, path_of("adverse-events"), page_size=1000, **query)["results"]
    assert {r["id"] for r in whole} == made and len(whole) == len(made)
    for size in (1, 2, 4):
        assert all_rows(client, path_of("adverse-events"), page_size=size, **query) == whole
        last = get(client, path_of("adverse-events"), page_size=size, **query)
        while last["next"]:
            last = get(client, last["next"])
        assert walk_back(client, last) + last["results"] == whole


def test_the_deletions_feed_pages_see_every_deletion_once_at_equal_times(
    site, coordinator, data_manager, frozen_clock
):
    doomed = [make_subject(site, by=coordinator, consented=False) for _ in range(5)]
    ids = sorted(subject.pk for subject in doomed)
    for subject in doomed:
        subject_services.delete_subject(subject, user=coordinator, reason="Registered twice")
    client = api(data_manager)
    since = frozen_clock.isoformat()
    whole = get(client, path_of("deletions"), since=since, page_size=1000)["results"]
    assert [r["record_id"] for r in whole] == ids
    assert len({r["deleted_at"] for r in whole}) == 1
    for size in (1, 2, 3):
        assert all_rows(client, path_of("deletions"), since=since, page_size=size) == whole
        last = get(client, path_of("deletions"), since=since, page_size=size)
        while last["next"]:
            last = get(client, last["next"])
        assert walk_back(client, last) + last["results"] == whole


def page_statements(client, name: str, size: int, **query) -> dict[str, list[str]]:
    """The SQL of page 1 and page 2 of a list (``size`` rows a page), by page."""
    found = {}
    with CaptureQueriesContext(connection) as first:
        page = get(client, path_of(name), page_size=size, **query)
    found["page 1"] = [q["sql"] for q in first.captured_queries]
    if page["next"]:
        with CaptureQueriesContext(connection) as second:
            get(client, page["next"])
        found["page 2"] = [q["sql"] for q in second.captured_queries]
    return found


def sorts_in(plan: dict) -> list[str]:
    """The sorts of a plan (EXPLAIN's JSON) that read more than ties: a Sort node, or an
    Incremental Sort that sorts more than the last key (the tie-breaker, e.g. the history id
    among rows of equal time, over an index of the time)."""
    node, found = plan["Node Type"], []
    if node == "Sort" or (
        node == "Incremental Sort" and len(plan["Sort Key"]) - len(plan["Presorted Key"]) > 1
    ):
        found.append(f"{node} {plan['Sort Key']}")
    for child in plan.get("Plans", ()):
        found += sorts_in(child)
    return found


def plan_without_sorting(sql: str) -> dict:
    """PostgreSQL's plan of ``sql`` when a sort is the planner's last resort."""
    with connection.cursor() as cursor:
        cursor.execute("SET enable_sort = off")
        try:
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql.replace("%", "%%"))
            [[explained]] = cursor.fetchall()
        finally:
            cursor.execute("RESET enable_sort")
    if isinstance(explained, str):
        explained = json.loads(explained)
    return explained[0]["Plan"]


@pytest.mark.postgres
def test_a_page_reads_a_range_of_an_index_and_never_sorts_the_study(
    study, data_manager, sponsor, monitor_101
):
    """Every list, page 1 and the next page, for the whole study and for one site's monitor:
    the page's query (``LIMIT size + 1``) is planned without a sort even with sorting made
    ruinous for the planner (``enable_sort = off``): an index gives its rows in order, so the
    database reads the page's rows, not every row of the study. A list ordered by columns of
    several tables (the casebook's site, subject, number) would need a sort and fail here."""
    size = 1  # LIMIT 2: each list has more rows than that
    checked = 0
    for user in (sponsor, monitor_101):
        client = api(user)
        for name in FORMS + FEEDS:
            pages = page_statements(client, name, size, **list_query(name))
            for page, statements in pages.items():
                paging = [sql for sql in statements if sql.rstrip().endswith(f"LIMIT {size + 1}")]
                assert paging, (name, page)
                for sql in paging:
                    assert sorts_in(plan_without_sorting(sql)) == [], (user.username, name, page)
                    checked += 1
    assert checked >= 2 * len(FORMS)


def test_a_cursor_keeps_its_ordering(many_aes, data_manager):
    client = api(data_manager)
    page = get(client, path_of("adverse-events"), page_size=2, ordering="grade")
    cursor = re.search(r"cursor=([^&]+)", page["next"]).group(1)
    response = client.get(
        path_of("adverse-events"), {"cursor": unquote(cursor), "ordering": "term"}
    )
    assert "ordering" in sentence(response)
    other = client.get(path_of("queries"), {"cursor": unquote(cursor)})
    assert sentence(other).startswith("This cursor was made for another")


# --- bad parameters: a 400 with a sentence -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-45",  # no such month or day
        "2024-02-30",
        "0000-01-01",  # year 0
        "2024-01-01T00:00:00+25:00",  # no such offset
        "2024-01-01T00:00:00+01:00junk",
        "2024-01-01T24:30:00Z",
        "2024-01-01T10:00:00 02:00",  # a + sign that a URL turned into a space
        "yesterday",
        "20240101",  # basic format: not taken
        "",
    ],
)
def test_a_bad_date_is_a_400_with_a_sentence(study, data_manager, value):
    client = api(data_manager)
    for name, param in [(n, "updated_since") for n in FORMS] + [
        ("audit-trail", "since"),
        ("deletions", "since"),
    ]:
        response = client.get(path_of(name), {param: value})
        assert param in sentence(response), name
        assert param in client.get(path_of(name), {param: value, "format": "csv"}).json()


def test_a_date_time_beyond_the_ends_of_the_calendar_in_utc_selects_all_or_nothing(
    study, data_manager
):
    """0001-01-01T00:00:00+14:00 is a valid date-time (RFC 3339, the schema's format) before year
    1 in UTC: every record is after it; 9999-12-31T23:59:59.999999-12:00 is after year 9999 in
    UTC: none is. A 200 with exactly those records, not a 400 (issue 20, item 11)."""
    client = api(data_manager)
    before_year_1, after_year_9999 = "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59.999999-12:00"
    for name, param in [(n, "updated_since") for n in FORMS] + [("audit-trail", "since")]:
        every = client.get(path_of(name), {param: LONG_AGO, "page_size": 1000})
        since_before = client.get(path_of(name), {param: before_year_1, "page_size": 1000})
        assert since_before.status_code == 200, (name, since_before.content)
        assert since_before.json()["results"] == every.json()["results"] != [], name
        since_after = client.get(path_of(name), {param: after_year_9999})
        assert since_after.status_code == 200, (name, since_after.content)
        assert since_after.json()["results"] == [], name
    for since in (before_year_1, after_year_9999):
        assert client.get(path_of("deletions"), {"since": since}).status_code == 200


@pytest.mark.parametrize(
    "query, parameter",
    [
        ({"status": "lost"}, "status"),  # outside the code list
        ({"status": ["screening", "lost"]}, "status"),
        ({"sex": "X"}, "sex"),
        ({"ordering": "colour"}, "ordering"),
        ({"ordering": "date_of_birth"}, "ordering"),  # no ordering by a direct identifier
        ({"ordering": "age"}, "ordering"),  # computed: not a column
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1001"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"page_size": "-5"}, "page_size"),
        ({"date_of_birth": "1965-05-17"}, "date_of_birth"),  # not a filter
        ({"updated_snce": "2024-01-01"}, "updated_snce"),  # a typo is not a full pull
        ({"cursor": "garbage"}, "cursor"),
    ],
)
def test_bad_parameters_of_a_list_are_a_400_with_a_sentence(study, sponsor, query, parameter):
    response = api(sponsor).get(path_of("subjects"), query)
    assert parameter in response.json(), response.json()
    sentence(response)


def test_an_unknown_site_is_an_empty_list_and_an_unknown_status_a_400(study, data_manager):
    client = api(data_manager)
    assert get(client, path_of("subjects"), site="999")["results"] == []
    assert "status 'lost' is not one of its values: open, answered" in sentence(
        client.get(path_of("queries"), {"status": "lost"})
    )
    assert "true or false" in sentence(client.get(path_of("adverse-events"), {"serious": "maybe"}))
    assert "whole number" in sentence(client.get(path_of("adverse-events"), {"ae_number": "x"}))
    assert [r["grade"] for r in get(client, path_of("adverse-events"), grade="2")["results"]] == [
        2,
        2,
    ]


def test_a_tampered_cursor_is_a_400(study, data_manager):
    client = api(data_manager)
    for name in FORMS + FEEDS:
        page = get(client, path_of(name), page_size=1, **list_query(name))
        if not page["next"]:
            continue
        cursor = parse_qs(urlparse(page["next"]).query)["cursor"][0]
        tampered = cursor[:-3] + ("AAA" if not cursor.endswith("AAA") else "BBB")
        for bad in (tampered, cursor[:10], cursor + "x"):
            response = client.get(path_of(name), {"cursor": bad, **list_query(name)})
            assert sentence(response).startswith("This cursor is not valid"), name


# --- query counts, throttling, docs --------------------------------------------------------------


class TestQueryCounts:
    """Their own world: the module's and, for the class, more records of every form."""

    @pytest.fixture(scope="class")
    @classmethod
    def many(cls, world, django_db_blocker):
        """More than 5 records of every form (sites, subjects, eligibility, allocations, AEs,
        queries), history rows and deletions."""
        site, coordinator, data_manager = world.site, world.coordinator, world.data_manager
        with built_once(django_db_blocker):
            subjects = [make_subject_in_arm(Arm.B, site, by=coordinator) for _ in range(6)]
            monitor, investigator = (
                make_user(Role.MONITOR, site),
                make_user(Role.INVESTIGATOR, site),
            )
            for subject in subjects:
                record_ae(subject, coordinator)
                add_efficacy_records(subject, by=coordinator)
                add_exposure_records(subject, by=coordinator)
                add_monitoring_records(
                    subject,
                    by=coordinator,
                    data_manager=data_manager,
                    monitor=monitor,
                    investigator=investigator,
                )
                add_survival_crfs(subject, by=coordinator, died=False)  # consent withdrawn
                query_services.raise_query(
                    subject, field="sex", message="Check.", user=data_manager
                )
            for _ in range(6):
                make_site()
                doomed = make_subject(site, by=coordinator, consented=False)
                subject_services.delete_subject(doomed, user=coordinator, reason="Registered twice")
            yield subjects

    def test_a_pages_query_count_does_not_grow_with_the_study(
        self, many, site, coordinator, data_manager
    ):
        """Page 1 and page 2 of every list cost as many queries after the study grew by more
        records of every form (a subject's casebook, its AE, a query, a deletion)."""
        client = api(data_manager)

        def counts() -> dict:
            return {
                (name, page): len(statements)
                for name in FORMS + FEEDS
                for page, statements in page_statements(client, name, 3, **list_query(name)).items()
            }

        before = counts()
        monitor = make_user(Role.MONITOR, site)
        for _ in range(2):
            subject = make_subject_in_arm(Arm.B, site, by=coordinator)
            record_ae(subject, coordinator)
            add_efficacy_records(subject, by=coordinator)
            add_exposure_records(subject, by=coordinator)
            add_monitoring_records(
                subject, by=coordinator, data_manager=data_manager, monitor=monitor
            )
            query_services.raise_query(subject, field="sex", message="Check.", user=data_manager)
            doomed = make_subject(site, by=coordinator, consented=False)
            subject_services.delete_subject(doomed, user=coordinator, reason="Registered twice")
        after = counts()
        assert before.keys() == after.keys()
        grew = {key: (before[key], after[key]) for key in before if after[key] > before[key]}
        assert grew == {}

    @pytest.mark.parametrize("name", FORMS + FEEDS)
    def test_a_pages_query_count_does_not_grow_with_its_size(
        self, many, data_manager, name, django_assert_max_num_queries
    ):
        client = api(data_manager)
        query = list_query(name)
        if name == "audit-trail":
            # A page costs one query per audited model and two per model on the page, whatever
            # its size: two models that both appear in the first 5 rows (each AE is written with
            # its causality).
            query = {"model": ["adverse_events.adverseevent", "adverse_events.aecausality"]}
        with CaptureQueriesContext(connection) as five:
            page = get(client, path_of(name), page_size=5, **query)["results"]
            assert len(page) == 5
        with django_assert_max_num_queries(len(five.captured_queries)):
            assert len(get(client, path_of(name), page_size=50, **query)["results"]) > 5
        if name == "audit-trail":
            assert {r["model"] for r in page} == set(query["model"])
            models = len(audit_trail.audited_models())
            with django_assert_max_num_queries(3 * models + len(five.captured_queries)):
                assert len(get(client, path_of(name), page_size=50)["results"]) == 50


def test_the_api_is_throttled(study, sponsor, monkeypatch):
    monkeypatch.setattr(UserRateThrottle, "rate", "3/minute", raising=False)
    client = api(sponsor)
    assert [client.get(path_of("sites")).status_code for _ in range(3)] == [200] * 3
    throttled = client.get(path_of("sites"))
    assert throttled.status_code == 429 and "throttled" in throttled.json()["detail"]


def test_the_docs_page_needs_no_internet(client):
    page = client.get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(url.startswith("/static/") for url in urls), urls
    assert not re.search(r"https?://", html)
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content) if asset.streaming else asset.content


def test_the_schema_lists_every_endpoint(sponsor):
    schema = api(sponsor).get("/api/v1/schema/").content.decode()
    for name in FORMS + FEEDS:
        assert f"/api/v1/{name}/" in schema, name


# --- PostgreSQL: the CSV from COPY is the CSV of the Python path ---------------------------------


def csv_text_of(client, name, **query) -> str:
    response = client.get(path_of(name), {"format": "csv", **query})
    assert response.status_code == 200 and response.streaming, response.content
    return b"".join(response.streaming_content).decode()


@pytest.mark.postgres
def test_the_copy_csv_is_byte_for_byte_the_python_csv(
    study, coordinator, data_manager, monkeypatch
):
    ae = study["101"]["ae"]
    # Aware earlier today at the site (the onset's date: never before it, whatever the hour).
    now = timezone.now()
    midnight = datetime.combine(
        site_today(ae.subject.site), time(0), tzinfo=ae.subject.site.zoneinfo
    )
    aware = (midnight + (now - midnight) / 2).replace(microsecond=0)
    before_the_change = just_after_now()
    ae_services.update_adverse_event(
        ae,
        user=coordinator,
        reason="Hospitalized",
        serious=True,
        sc_hospitalization=True,
        site_aware_at=aware,
        treatment_given=True,
        treatment_details='Amlodipine, 5 mg "daily"\nthen 10 mg\r\nstopped; café',
    )
    reported = (aware + (now - aware) / 2).replace(microsecond=0).astimezone(tz(timedelta(hours=2)))
    ae_services.mark_sae_reported(ae, user=coordinator, reported_at=reported)
    monitor = make_user(Role.MONITOR, ae.subject.site)
    for name in ("adverse-events", "sites"):
        assert copy_csv.plan(records.form_named(name), identifiers=True) is not None
    for name in ("subjects", "eligibility", "allocations", "queries"):  # computed columns
        assert copy_csv.plan(records.form_named(name), identifiers=True) is None
    since = {"updated_since": before_the_change}
    pulls = [
        (user, name, query)
        for user in (data_manager, monitor)
        for name, query in (
            ("adverse-events", {}),
            ("adverse-events", {"ordering": "-grade,term", "site": "101"}),
            ("adverse-events", since),
            ("sites", {}),
            ("sites", {"ordering": "-code"}),
        )
    ]
    copied = {str(pull): csv_text_of(api(pull[0]), pull[1], **pull[2]) for pull in pulls}
    monkeypatch.setattr(copy_csv, "ENABLED", False)
    for pull in pulls:
        assert copied[str(pull)] == csv_text_of(api(pull[0]), pull[1], **pull[2]), pull[1:]
    changed = list(csv.DictReader(io.StringIO(copied[str(pulls[2])])))
    assert [int(row["id"]) for row in changed] == [ae.pk]
    line = copied[str(pulls[0])]
    assert '"Amlodipine, 5 mg ""daily""\nthen 10 mg\r\nstopped; café"' in line
    assert reported.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z" in line


@pytest.mark.postgres
def test_copy_writes_utc_times_as_python_does(db):
    make_site("303")
    for moment in (
        datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        datetime(2024, 5, 1, 9, 30, 0, 120, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, 999999, tzinfo=tz(timedelta(hours=-5))),
    ):
        written = (
            Site.objects.annotate(t=UtcIso(Value(moment, output_field=DateTimeField())))
            .values_list("t", flat=True)
            .first()
        )
        assert written == utc_iso(moment)
