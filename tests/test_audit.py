"""The audit trail: every change recorded with who, when, old/new value and reason; append-only."""

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction
from simple_history.models import HistoricalChanges

from core.audit import AuditedQuerySet, audited_save
from core.errors import BulkChangeRefused, ReasonRequired
from core.registry import project_app_labels
from subjects import services
from subjects.models import Site, Subject

pytestmark = pytest.mark.django_db

# Models that hold neither trial data nor configuration: the append-only security log itself, and
# the one-time tokens of submitted forms (a double click makes one record; purged after a day).
NOT_AUDITED = {"accounts.AuthEvent", "core.SubmissionToken"}


def project_models():
    return [
        m
        for m in apps.get_models()
        if m._meta.app_label in project_app_labels()
        and not issubclass(m, HistoricalChanges)
        and m._meta.label not in NOT_AUDITED
    ]


def test_every_model_holding_trial_data_has_history_and_guarded_bulk_paths():
    models = project_models()
    assert {"subjects.Site", "subjects.SiteMembership", "subjects.Subject"} <= {
        m._meta.label for m in models
    }
    for model in models:
        assert hasattr(model, "history"), f"{model._meta.label} has no HistoricalRecords"
        assert isinstance(model._default_manager.all(), AuditedQuerySet), (
            f"{model._meta.label}'s default manager lets bulk writes bypass the audit trail"
        )


def test_change_records_user_time_old_new_and_reason(subject, coordinator):
    services.update_demographics(
        subject, user=coordinator, reason="Source document shows female", sex="F"
    )
    latest = subject.history.first()
    assert latest.history_type == "~"
    assert latest.history_user == coordinator
    assert latest.history_change_reason == "Source document shows female"
    assert latest.history_date.utcoffset().total_seconds() == 0  # stored in UTC
    delta = latest.diff_against(latest.prev_record)
    assert [(c.field, c.old, c.new) for c in delta.changes] == [("sex", "M", "F")]


def test_edit_without_reason_is_refused_and_nothing_changes(subject, coordinator):
    for reason in ("", "   "):
        with pytest.raises(ReasonRequired, match="reason for change"):
            services.update_demographics(subject, user=coordinator, reason=reason, sex="F")
    assert Subject.objects.get(pk=subject.pk).sex == "M"


def test_any_save_path_without_reason_is_refused(subject):
    """Even code that bypasses the services (a shell, a careless view) cannot change silently."""
    subject.initials = "ZZ"
    with pytest.raises(ReasonRequired), transaction.atomic():
        subject.save()
    assert Subject.objects.get(pk=subject.pk).initials == ""


def test_creation_needs_no_reason_but_records_the_user(site, coordinator):
    new = audited_save(Site(code="303", name="New", country="China"), user=coordinator)
    assert new.history.get().history_user == coordinator


@pytest.mark.parametrize(
    "bulk",
    [
        lambda qs: qs.update(status="died"),
        lambda qs: qs.delete(),
        lambda qs: qs.bulk_update(list(qs), ["status"]),
        lambda qs: qs.bulk_create([Subject()]),
    ],
)
def test_bulk_paths_that_bypass_history_are_refused(subject, bulk):
    with pytest.raises(BulkChangeRefused, match="bypass the audit trail"):
        bulk(Subject.objects.all())
    assert Subject.objects.get(pk=subject.pk).status == "screening"


def test_audited_bulk_create_writes_history(coordinator):
    sites = Site.objects.bulk_create_with_history(
        [Site(code=f"B{n}", name=f"B{n}", country="China") for n in range(3)],
        user=coordinator,
        reason="Sites opened",
    )
    assert Site.history.filter(history_type="+", history_change_reason="Sites opened").count() == 3
    assert all(s.pk for s in sites)


@pytest.mark.postgres
def test_database_refuses_update_and_delete_of_history(subject):
    table = Subject.history.model._meta.db_table
    for sql in (f"UPDATE {table} SET history_change_reason = 'x'", f"DELETE FROM {table}"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
    assert Subject.history.filter(history_change_reason="x").count() == 0
    assert Subject.history.count() == 2  # registered + consented
