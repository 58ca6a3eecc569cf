"""The bases of the audited models (core.crf): every CRF is a ``CrfRecord``, and adopting the
bases kept every row and every history row of a seeded study."""

import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import resolve

from core.audit import audited_models, audited_save
from core.crf import AuditedModel, CrfRecord, check_crf_pages
from core.management.commands.table_checksums import as_lines, differences, table_checksums
from subjects.models import Site
from treatment.models import Cycle

# Models of a subject that are not CRF data: monitoring's states and signatures, the queries.
NOT_CRF_APPS = {"monitoring", "queries"}


def test_every_audited_model_has_a_base_and_every_record_of_a_subject_is_a_crf():
    for model in audited_models():
        assert issubclass(model, AuditedModel), model
        of_a_subject = hasattr(model, "subject_lookup")
        assert issubclass(model, CrfRecord) == (
            of_a_subject and model._meta.app_label not in NOT_CRF_APPS
        ), model


def test_every_crf_names_its_page_and_one_that_does_not_fails_the_checks(monkeypatch):
    assert check_crf_pages() == []
    monkeypatch.setattr(Cycle, "url_name", "")
    assert [(e.id, e.obj) for e in check_crf_pages()] == [("core.E001", Cycle)]


def test_the_history_keeps_every_field_but_the_time_of_the_last_change():
    for model in audited_models():
        kept = {f.name for f in model.history.model.tracked_fields}
        assert kept == {f.name for f in model._meta.fields} - {"updated"}, model
        assert model.history.model._meta.db_table == (
            f"{model._meta.app_label}_historical{model._meta.model_name}"
        )


@pytest.mark.django_db
def test_the_models_need_no_migration():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.postgres
@pytest.mark.django_db
def test_migrate_keeps_every_row_and_history_row_of_the_demo(tmp_path, settings):
    settings.VAR_DIR = tmp_path
    call_command("seed_demo", stdout=io.StringIO())
    before = table_checksums()
    history = {t: rows for t, (rows, _) in before.items() if "_historical" in t}
    assert len(history) == len(audited_models()) and sum(history.values()) > 0

    executor = MigrationExecutor(connection)
    assert executor.migration_plan(executor.loader.graph.leaf_nodes()) == []
    call_command("migrate", verbosity=0)
    assert table_checksums() == before

    # Every CRF record's page is one of the site's pages.
    for model in audited_models():
        if issubclass(model, CrfRecord) and (record := model.objects.first()):
            assert resolve(record.get_absolute_url()), model

    # The figures see a change: one more history row of one site (its row is the same).
    user = get_user_model().objects.get(is_superuser=True)  # the demo's admin
    audited_save(Site.objects.first(), user=user, reason="Checking the checksums see a change")
    after = table_checksums()
    table = Site.history.model._meta.db_table
    assert [line.split(":")[0] for line in differences(as_lines(before), as_lines(after))] == [
        table
    ]
    assert after[table][0] == before[table][0] + 1
