"""The query life cycle: sweeps are idempotent, confirmed-correct values are not raised again,
every transition is a service refused with a sentence when the user or the status forbids it,
and a CRF change runs the subject's checks after it commits."""

from __future__ import annotations

from dataclasses import replace
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import transaction

from core.errors import AccessDenied, DomainError
from core.roles import Role
from eligibility.models import EligibilityAssessment
from queries import checks, services
from queries.models import DataQuery, MessageKind, QueryStatus, Resolution
from queries.services import QueryRefused
from queries.sweep import run_edit_checks
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .builders import days_ago, make_eligible_assessment, make_subject, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def late(site, coordinator):
    """A subject still in screening 40 days after consent: SUBJ-005 fires."""
    return make_subject(
        site, by=coordinator, screening_date=days_ago(40), consent_date=days_ago(40)
    )


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site)


def the_query(subject) -> DataQuery:
    return DataQuery.objects.get(subject=subject, check_code="SUBJ-005")


def test_a_second_sweep_changes_nothing(late, site, coordinator):
    make_subject(site, by=coordinator, screening_date=days_ago(35), consent_date=days_ago(35))
    first = run_edit_checks()
    assert (first.opened, first.closed) == (2, 0)
    before = list(DataQuery.history.values_list("history_id", flat=True))
    second = run_edit_checks()
    assert (second.opened, second.kept, second.closed) == (0, 2, 0)
    assert list(DataQuery.history.values_list("history_id", flat=True)) == before


def test_confirmed_correct_is_not_raised_again_until_the_value_changes(
    late, data_manager, coordinator
):
    run_edit_checks()
    query = the_query(late)
    services.close_query(
        query,
        user=data_manager,
        text="Screening extended: approved by the sponsor",
        confirmed_correct=True,
    )
    query.refresh_from_db()
    assert (query.status, query.resolution) == (QueryStatus.CLOSED, Resolution.CONFIRMED_CORRECT)
    again = run_edit_checks()
    assert (again.opened, again.suppressed) == (0, 1)
    subject_services.record_consent(
        late,
        user=coordinator,
        consent_date=days_ago(38),
        consent_version="2.1",
        reason="Re-consent on the amended form",
    )
    assert run_edit_checks().opened == 1  # new values, still a problem: a new query
    assert DataQuery.objects.filter(subject=late, status=QueryStatus.OPEN).count() == 1


def test_confirming_a_value_that_changed_meanwhile_closes_it_as_resolved(
    late, data_manager, coordinator
):
    run_edit_checks()
    subject_services.change_status(
        late, SubjectStatus.SCREEN_FAILED, user=coordinator, reason="Lost", on_date=days_ago(0)
    )
    query = services.close_query(
        the_query(late), user=data_manager, text="Fine as it is", confirmed_correct=True
    )
    assert query.resolution == Resolution.RESOLVED_BY_DATA_CHANGE


def test_a_cancelled_query_is_not_raised_again_for_the_same_values(late, monitor):
    run_edit_checks()
    services.cancel_query(the_query(late), user=monitor, text="Raised in error: extension agreed")
    assert run_edit_checks().opened == 0


def test_the_site_answers_and_data_management_closes(late, coordinator, monitor, data_manager):
    run_edit_checks()
    query = services.answer_query(
        the_query(late),
        user=coordinator,
        text="The patient is waiting for a CT slot",
        reason="confirmed_correct",
    )
    assert query.status == QueryStatus.ANSWERED
    query = services.reopen_query(query, user=monitor, text="Give the planned date")
    assert query.status == QueryStatus.REOPENED
    query = services.answer_query(
        query, user=coordinator, text="Planned next Monday", reason="other"
    )
    query = services.close_query(query, user=data_manager, text="Thanks")
    assert (query.status, query.resolution) == (QueryStatus.CLOSED, Resolution.CLOSED)
    kinds = list(query.thread.order_by("at", "pk").values_list("kind", "author__username"))
    assert kinds == [
        (MessageKind.RAISED, "edc-system"),
        (MessageKind.ANSWERED, "coordinator"),
        (MessageKind.REOPENED, monitor.username),
        (MessageKind.ANSWERED, "coordinator"),
        (MessageKind.CLOSED, "dm"),
    ]
    assert query.history.first().history_change_reason == "Closed: Thanks"


def test_who_may_do_what(late, coordinator, other_coordinator, monitor, sponsor, other_site):
    run_edit_checks()
    query = the_query(late)
    other_monitor = make_user(Role.MONITOR, other_site)
    with pytest.raises(AccessDenied, match="site staff or an investigator at site 101"):
        services.answer_query(query, user=monitor, text="x", reason="other")
    with pytest.raises(AccessDenied):
        services.answer_query(query, user=other_coordinator, text="x", reason="other")
    for user in (coordinator, sponsor, other_monitor):
        with pytest.raises(AccessDenied, match="raise, close, reopen or cancel"):
            services.close_query(query, user=user, text="x")
    assert the_query(late).status == QueryStatus.OPEN


def test_transitions_the_status_does_not_allow_are_refused(late, coordinator, monitor):
    run_edit_checks()
    query = the_query(late)
    with pytest.raises(QueryRefused, match="is open: it cannot be reopened"):
        services.reopen_query(query, user=monitor, text="again")
    services.cancel_query(query, user=monitor, text="error")
    with pytest.raises(QueryRefused, match="is cancelled: it cannot be answered"):
        services.answer_query(query, user=coordinator, text="x", reason="other")
    with pytest.raises(DomainError, match="Write the answer"):
        services.answer_query(query, user=coordinator, text="  ", reason="other")
    with pytest.raises(DomainError, match="Choose the reason"):
        services.answer_query(query, user=coordinator, text="x", reason="because")


def test_a_manual_query_on_a_field_and_the_sweep_leaves_it_alone(subject, monitor, coordinator):
    assessment = make_eligible_assessment(subject, by=coordinator)
    query = services.raise_query(
        assessment, field="ecog", message="Source says ECOG 1: please check", user=monitor
    )
    assert (query.field, query.check_code, query.raised_by) == ("ecog", "", monitor)
    assert query.field_label == "ECOG performance status"
    with pytest.raises(DomainError, match="has no field 'colour'"):
        services.raise_query(assessment, field="colour", message="?", user=monitor)
    with pytest.raises(QueryRefused, match="Only an edit check's query"):
        services.close_query(query, user=monitor, text="ok", confirmed_correct=True)
    run_edit_checks()
    query.refresh_from_db()
    assert query.status == QueryStatus.OPEN


def test_bulk_raise_on_many_subjects(site, coordinator, data_manager):
    with_crf = [make_subject(site, by=coordinator) for _ in range(3)]
    for subject in with_crf:
        make_eligible_assessment(subject, by=coordinator)
    without = make_subject(site, by=coordinator)
    result = services.raise_bulk(
        [*with_crf, without],
        model=EligibilityAssessment,
        field="lab_date",
        message="Lab dates: please attach the lab report",
        user=data_manager,
    )
    assert len(result.raised) == 3 and result.without_record == [without]
    assert {q.subject for q in result.raised} == set(with_crf)
    with pytest.raises(DomainError, match="a record each subject has once"):
        from adverse_events.models import AdverseEvent

        services.raise_bulk(
            with_crf, model=AdverseEvent, field="grade", message="x", user=data_manager
        )


def test_a_crf_change_runs_the_subjects_checks_after_the_commit(
    transactional_db, late, coordinator
):
    run_edit_checks()
    subject_services.change_status(
        late, SubjectStatus.SCREEN_FAILED, user=coordinator, reason="Lost", on_date=days_ago(0)
    )  # committed: the subject's checks ran (eagerly: no broker here) and closed the query
    query = the_query(late)
    assert (query.status, query.resolution) == (
        QueryStatus.CLOSED,
        Resolution.RESOLVED_BY_DATA_CHANGE,
    )


def receive_subject_changes(monkeypatch, receiver):
    """The queries app's ``after_subject_change`` is ``receiver`` for this test."""
    config = apps.get_app_config("queries")
    declared = replace(config.contributions(), after_subject_change=receiver)
    monkeypatch.setattr(config, "contributions", lambda: declared)


def test_a_burst_of_saves_in_one_transaction_checks_the_subject_once(
    transactional_db, subject, coordinator, monkeypatch
):
    checked = []
    receive_subject_changes(monkeypatch, checked.append)
    with transaction.atomic():
        for initials in ("AB", "AC", "AD"):
            subject_services.update_demographics(
                Subject.objects.get(pk=subject.pk),
                user=coordinator,
                reason="Typo",
                initials=initials,
            )
        assert checked == []  # nothing before the commit
    assert checked == [subject.pk]


def test_a_rolled_back_change_checks_nothing(transactional_db, subject, coordinator, monkeypatch):
    checked = []
    receive_subject_changes(monkeypatch, checked.append)
    with pytest.raises(RuntimeError), transaction.atomic():
        subject_services.update_demographics(subject, user=coordinator, reason="x", initials="AB")
        raise RuntimeError("the request failed after the save")
    assert checked == []


def test_the_command_prints_the_counts(late):
    out = StringIO()
    call_command("run_edit_checks", stdout=out)
    total = len(checks.CHECKS)  # every app's
    assert f"{total} edit check(s) on the whole study: 1 opened, 0 kept, 0 closed" in out.getvalue()
    out = StringIO()
    call_command(
        "run_edit_checks", "--subject", late.subject_identifier, "--check", "subj-005", stdout=out
    )
    assert "1 edit check(s) on 1 subject(s): 0 opened, 1 kept, 0 closed" in out.getvalue()


def test_the_command_refuses_unknown_checks_and_subjects(late):
    with pytest.raises(CommandError, match="There is no edit check XX-999"):
        call_command("run_edit_checks", "--check", "XX-999")
    with pytest.raises(CommandError, match="No subject 999-9999"):
        call_command("run_edit_checks", "--subject", "999-9999")
