"""Adding a CRF (README, "Adding a CRF"): an app of its own and one line in INSTALLED_APPS.

``tests/crf_example`` is such an app (vital signs: a date, a number with its unit, a choice),
written by the recipe and touching no other file. Each test installs it for itself, in this
process (its tables made in the test's transaction, rolled back with it), and finds the new CRF
where the study's data go: its pages (and not another site's users), the subject's audit
timeline, the admin, the ODM metadata, the Dataset-JSON catalogue, the sponsor API (scoped by
site), the SDV plan and the lock guard. Nothing stays installed afterwards.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.management import create_permissions
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.test import Client, override_settings
from django.urls import NoReverseMatch, clear_url_caches, reverse
from lxml import etree

import queries.checks
from accounts.roles import sync_role_permissions
from core import registry
from core.audit import audited_save, subject_models
from core.edit_checks import Scope
from core.roles import Role
from exports import api as exports_api
from exports.dataset_json import datasets
from monitoring import services as monitoring
from monitoring.models import LockLevel
from monitoring.sdv_plan import sdv_models
from monitoring.state import DataLocked

from .builders import make_subject, make_user, site_today

APP = "tests.crf_example"
ODM = {"o": "http://www.cdisc.org/ns/odm/v1.3"}


def _forget_what_was_derived_from_the_apps() -> None:
    """What the project derives once from the installed apps, read again: the URL resolver,
    the subject's record models, the API's per-form serializers, the joined edit checks, the
    content types."""
    clear_url_caches()
    subject_models.cache_clear()
    exports_api.form_api.cache_clear()
    exports_api.serializer_for.cache_clear()
    for joined in ("CHECKS", "CHECKS_BY_CODE"):
        vars(queries.checks).pop(joined, None)
    ContentType.objects.clear_cache()


def _create_tables(*models) -> None:
    """The tables, in the test's transaction. Not in ``with schema_editor()``: on SQLite that
    would switch the foreign key checks off, which SQLite refuses inside a transaction; creating
    tables needs no such switch."""
    editor = connection.schema_editor(atomic=False)
    editor.deferred_sql = []
    for model in models:
        editor.create_model(model)
    for statement in editor.deferred_sql:
        editor.execute(statement)


@contextmanager
def crf_app_installed():
    """The app in INSTALLED_APPS, its tables, its permissions given to the roles (what migrate
    does); afterwards none of it, nor anything derived from it."""
    try:
        with override_settings(INSTALLED_APPS=[*settings.INSTALLED_APPS, APP]):
            _forget_what_was_derived_from_the_apps()
            from tests.crf_example.admin import VitalSignsAdmin
            from tests.crf_example.models import VitalSigns

            # Django's autodiscover imports an admin module once per process.
            if not admin.site.is_registered(VitalSigns):
                admin.site.register(VitalSigns, VitalSignsAdmin)
            try:
                _create_tables(VitalSigns, VitalSigns.history.model)
                create_permissions(apps.get_app_config("crf_example"), verbosity=0)
                sync_role_permissions()
                yield VitalSigns
            finally:
                admin.site.unregister(VitalSigns)
    finally:
        _forget_what_was_derived_from_the_apps()


@pytest.fixture
def crf(site, other_site, coordinator, other_coordinator, data_manager, subject):
    """The app installed, and the people and subjects of two sites."""
    with crf_app_installed() as model:
        yield SimpleNamespace(
            model=model,
            subject=subject,
            other_subject=make_subject(other_site, by=other_coordinator),
            coordinator=coordinator,
            other_coordinator=other_coordinator,
            data_manager=data_manager,
            monitor=make_user(Role.MONITOR, site),
            other_monitor=make_user(Role.MONITOR, other_site),
        )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _measured(subject, user):
    from tests.crf_example.services import save_vital_signs

    values = {"measured_on": site_today(subject.site), "systolic_bp": 128, "position": "sitting"}
    return save_vital_signs(subject, user=user, **values)


def test_its_migration_creates_what_its_model_declares(crf):
    call_command("makemigrations", "crf_example", check=True, dry_run=True, verbosity=0)


def test_it_is_entered_on_its_pages_within_the_site_and_kept_in_the_audit_timeline(crf):
    identifier = crf.subject.subject_identifier
    client = _client(crf.coordinator)
    new_page = reverse("crf_example:new", args=[identifier])
    shown = client.get(new_page)
    assert shown.status_code == 200
    posted = shown.context["form"]["submission"].value()
    response = client.post(
        new_page,
        {
            "measured_on": site_today(crf.subject.site).isoformat(),
            "systolic_bp": "134",
            "position": "supine",
            "submission": str(posted),
        },
    )
    assert response.status_code == 302
    record = crf.model.objects.get(subject=crf.subject)
    assert (record.systolic_bp, record.position) == (134, "supine")

    edit_page = record.get_absolute_url()
    assert edit_page == f"/subjects/{identifier}/vital-signs/{record.pk}/"
    assert client.get(edit_page).status_code == 200
    response = client.post(
        edit_page,
        {
            "measured_on": record.measured_on.isoformat(),
            "systolic_bp": "132",
            "position": "supine",
            "reason": "Transcription error: the source says 132",
        },
    )
    assert response.status_code == 302
    record.refresh_from_db()
    assert record.systolic_bp == 132

    # Another site's users see neither page (as for every CRF: the isolation matrix walks the
    # URLconf, which now holds these patterns).
    for user in (crf.other_coordinator, crf.other_monitor):
        other = _client(user)
        assert other.get(edit_page).status_code == 404
        assert other.get(new_page).status_code == 404
        assert other.post(edit_page, {"systolic_bp": "99", "reason": "x"}).status_code == 404
    record.refresh_from_db()
    assert record.systolic_bp == 132

    # The subject's audit timeline lists its history, filterable by its kind of record.
    trail = client.get(
        reverse("subjects:detail", args=[identifier]), {"record": "crf_example.vitalsigns"}
    )
    assert ("crf_example.vitalsigns", "Vital signs") in trail.context["record_types"]
    history = trail.context["history"]
    assert len(history) == 2
    assert "Transcription error: the source says 132" in trail.content.decode()

    # The data managers read it in the admin, within the study.
    listing = _client(crf.data_manager).get("/admin/crf_example/vitalsigns/")
    assert listing.status_code == 200
    assert identifier in listing.content.decode()


def test_it_is_exported_to_odm_dataset_json_and_the_api_within_the_users_sites(crf):
    mine = _measured(crf.subject, crf.coordinator)
    theirs = _measured(crf.other_subject, crf.other_coordinator)

    # The sponsor API: one endpoint per exported form, each user's sites only.
    listed = _client(crf.monitor).get("/api/v1/vital-signs/")
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [(row["subject"], row["systolic_bp"]) for row in rows] == [
        (crf.subject.subject_identifier, mine.systolic_bp)
    ]
    everyone = _client(crf.data_manager).get("/api/v1/vital-signs/").json()["results"]
    assert {row["subject"] for row in everyone} == {
        crf.subject.subject_identifier,
        crf.other_subject.subject_identifier,
    }

    # ODM: the form, its items (the unit, the choices) in the metadata, the record in the data.
    response = _client(crf.monitor).get("/api/v1/exports/odm/", HTTP_ACCEPT="application/xml")
    root = etree.fromstring(b"".join(response.streaming_content))
    (form,) = root.xpath("//o:FormDef[@Name='Vital signs']", namespaces=ODM)
    items = {
        element.get("Name"): element
        for element in root.xpath("//o:ItemDef[starts-with(@OID, 'I.VITALS.')]", namespaces=ODM)
    }
    assert {"measured_on", "systolic_bp", "position"} <= set(items)
    assert items["systolic_bp"].xpath("o:MeasurementUnitRef", namespaces=ODM)
    assert items["position"].xpath("o:CodeListRef", namespaces=ODM)
    values = root.xpath(
        f"//o:ItemData[@ItemOID='{items['systolic_bp'].get('OID')}']", namespaces=ODM
    )
    assert [v.get("Value") for v in values] == [str(mine.systolic_bp)]
    assert form.get("OID")

    # Dataset-JSON: the app's VS domain and its form's dataset are in the catalogue.
    names = [dataset.name for dataset in datasets()]
    assert {"VS", "VITALS"} <= set(names)
    document = _client(crf.monitor).get("/api/v1/exports/dataset-json/vs/")
    vs = json.loads(b"".join(document.streaming_content))
    columns = [c["name"] for c in vs["columns"]]
    assert [dict(zip(columns, row, strict=True))["VSORRES"] for row in vs["rows"]] == ["128"]
    assert theirs.pk != mine.pk


def test_it_is_in_the_sdv_plan_and_refused_by_the_lock_guard(crf, settings):
    record = _measured(crf.subject, crf.coordinator)

    # The SDV plan: a kind of record the monitors verify; planned in full here.
    assert crf.model in sdv_models()
    settings.SDV_PLAN = {"full": ["crf_example.vitalsigns"], "sample_percent": 0}
    verify = reverse(
        "monitoring:verify", args=[ContentType.objects.get_for_model(crf.model).pk, record.pk]
    )
    assert verify in _client(crf.monitor).get(reverse("monitoring:worklist")).content.decode()
    monitoring.verify_record(record, user=crf.monitor)

    # Locked by the data manager: every write refused, the page read-only.
    monitoring.set_record_state(record, LockLevel.LOCKED, user=crf.data_manager, reason="Lock")
    record.systolic_bp = 140
    with pytest.raises(DataLocked):
        audited_save(record, user=crf.coordinator, reason="After the lock")
    page = _client(crf.coordinator).get(record.get_absolute_url())
    assert page.status_code == 302 and page.url == crf.subject.get_absolute_url()
    record.refresh_from_db()
    assert record.systolic_bp == 128


def test_its_edit_check_joins_the_study_s(crf):
    record = _measured(crf.subject, crf.coordinator)
    record.systolic_bp = 190
    audited_save(record, user=crf.coordinator, reason="Measured again")
    (check,) = [c for c in registry.edit_checks() if c.code == "VSX-001"]
    assert check in queries.checks.CHECKS
    found = check.find(Scope(subject_ids=[crf.subject.pk], now=record.updated))
    assert [(v.object_id, v.field) for v in found] == [(record.pk, "systolic_bp")]


def _traces() -> dict:
    """Where an installed CRF app shows."""
    try:
        page = reverse("crf_example:new", args=["101-0001"])
    except NoReverseMatch:
        page = None
    return {
        "installed": apps.is_installed(APP),
        "contributes": "crf_example" in {label for label, _ in registry.contributions()},
        "page": page,
        "records": any(m._meta.app_label == "crf_example" for m in subject_models()),
        "admin": any(m._meta.app_label == "crf_example" for m in admin.site._registry),
    }


def test_nothing_of_it_stays_installed_afterwards(db):
    before = _traces()
    with crf_app_installed():
        assert all(_traces().values())
    assert _traces() == before == dict.fromkeys(before, False) | {"page": None}
