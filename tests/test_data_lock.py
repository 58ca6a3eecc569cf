"""The data lock matrix: for each lock level (a record frozen or locked, a subject's casebook
frozen or locked, the study locked) and each write path (service, web form, admin, API, Celery
task, management command), the write is refused with a sentence and nothing changes; reopening
(with a reason) restores writing.

One write guard does it (``core.audit`` -> ``monitoring.guard``): every path ends in an audited
save. Frozen data still take the data queries' workflow (raised, answered, reopened): on frozen
data the admin's query actions, the edit-check task and ``run_edit_checks`` still write, by the
rule; on locked data they do not. The sponsor API has no write endpoint at all (405).
"""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.audit import audited_save, subject_models
from core.errors import AccessDenied
from core.roles import Role
from monitoring import services as monitoring
from monitoring.models import LockLevel
from monitoring.state import DataLocked
from queries import checks
from queries import services as query_services
from queries.checks import EditCheck, Severity, Violation
from queries.models import DataQuery, QueryStatus, ResponseReason
from queries.sweep import run_edit_checks
from queries.tasks import check_subject
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus
from tests import builders
from tests.builders import PASSWORD, site_today

pytestmark = pytest.mark.django_db

LEVELS = ("record_frozen", "record_locked", "casebook_frozen", "casebook_locked", "study_locked")
LOCKED_LEVELS = {"record_locked", "casebook_locked", "study_locked"}
CHANGE = "Initials corrected against the source"


# --- the study ----------------------------------------------------------------------------------


@pytest.fixture
def monitor(site):
    return builders.make_user(Role.MONITOR, site, username="monitor")


@pytest.fixture
def closed_query(subject, coordinator, data_manager):
    """A query on the subject's initials, answered and closed (the admin path reopens it)."""
    query = query_services.raise_query(
        subject, field="initials", message="Check the initials", user=data_manager
    )
    query_services.answer_query(
        query, user=coordinator, text="Checked", reason=ResponseReason.CONFIRMED_CORRECT
    )
    return query_services.close_query(query, user=data_manager, text="Fine")


@pytest.fixture
def signed_subject(subject, coordinator, investigator, closed_query):
    """The subject at the end of its participation (screen failed), its casebook signed."""
    subject_services.change_status(
        subject,
        SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Not eligible",
        on_date=site_today(),
    )
    monitoring.sign_casebook(subject, user=investigator, password=PASSWORD)
    return Subject.objects.get(pk=subject.pk)


def apply_level(level: str, subject, user):
    if level.startswith("record"):
        monitoring.set_record_state(subject, level.split("_")[1], user=user)
    elif level.startswith("casebook"):
        monitoring.set_casebook_state(subject, level.split("_")[1], user=user)
    else:
        monitoring.lock_study(user=user, reason="Database lock for the final analysis")


def reopen(level: str, subject, user):
    reason = "Correction requested by the sponsor"
    if level.startswith("record"):
        monitoring.set_record_state(subject, LockLevel.OPEN, user=user, reason=reason)
    elif level.startswith("casebook"):
        monitoring.set_casebook_state(subject, LockLevel.OPEN, user=user, reason=reason)
    else:
        monitoring.unlock_study(user=user, reason=reason)


def sentence(level: str, subject) -> str:
    if level == "study_locked":
        return "The study is locked for analysis: no change is possible."
    what = f"Subject record of {subject}" if level.startswith("record") else f"Subject {subject}"
    if level.endswith("locked"):
        return f"{what} is locked: no change is possible."
    return f"{what} is frozen: its data can no longer be changed"


def counts() -> dict[str, int]:
    """Rows and history rows of every record of a subject (CRFs, queries, monitoring)."""
    found = {}
    for model in subject_models():
        found[model._meta.label] = model._base_manager.count()
        found[f"{model._meta.label} history"] = model.history.count()
    return found


@pytest.fixture
def locked(request, signed_subject, data_manager):
    level = request.param
    apply_level(level, signed_subject, data_manager)
    return level


def every_level(test):
    return pytest.mark.parametrize("locked", LEVELS, indirect=True)(test)


# A check added later that flags every subject record: the task and the command would raise it.
def _flag_every_subject(scope):
    rows = scope.narrow(Subject.objects.all(), "pk").values("pk", "site_id", "subject_identifier")
    for row in rows:
        yield Violation(
            row["pk"],
            row["site_id"],
            Subject,
            row["pk"],
            "initials",
            row["subject_identifier"],
            "Initials to check against the source",
            {"initials": "x"},
        )


FLAG = EditCheck("TEST-001", "Test", Subject, ("initials",), Severity.WARNING, _flag_every_subject)


@pytest.fixture
def new_check(monkeypatch):
    monkeypatch.setattr(checks, "CHECKS", (*checks.CHECKS, FLAG))
    monkeypatch.setattr(checks, "CHECKS_BY_CODE", {**checks.CHECKS_BY_CODE, FLAG.code: FLAG})


# --- the matrix ---------------------------------------------------------------------------------


@every_level
def test_service_call(locked, signed_subject, coordinator, data_manager):
    before = counts()
    with pytest.raises(AccessDenied) as refused:
        subject_services.update_demographics(
            Subject.objects.get(pk=signed_subject.pk),
            user=coordinator,
            reason=CHANGE,
            initials="ZZ",
        )
    assert sentence(locked, signed_subject) in str(refused.value)
    # The lowest write path refuses by itself (whoever calls it, with no access check first).
    raw = Subject.objects.get(pk=signed_subject.pk)
    raw.initials = "ZZ"
    with pytest.raises(DataLocked) as guarded:
        audited_save(raw, user=coordinator, reason=CHANGE)
    assert sentence(locked, signed_subject) in str(guarded.value)
    assert counts() == before
    assert Subject.objects.get(pk=signed_subject.pk).initials != "ZZ"

    reopen(locked, signed_subject, data_manager)
    subject_services.update_demographics(
        Subject.objects.get(pk=signed_subject.pk), user=coordinator, reason=CHANGE, initials="ZZ"
    )
    assert Subject.objects.get(pk=signed_subject.pk).initials == "ZZ"


def demographics_post(subject, **changes) -> dict:
    data = {
        "screening_number": subject.screening_number,
        "screening_date": subject.screening_date.isoformat(),
        "initials": subject.initials,
        "date_of_birth": subject.date_of_birth.isoformat(),
        "age_at_screening": "",
        "sex": subject.sex,
        "reason": CHANGE,
    }
    return {**data, **changes}


@every_level
def test_web_form_post(locked, signed_subject, coordinator, data_manager, client):
    client.force_login(coordinator)
    url = reverse("subjects:edit", args=[signed_subject.subject_identifier])
    before = counts()
    page = client.get(url, follow=True)  # the form is not offered: the subject page, read only
    assert page.redirect_chain and sentence(locked, signed_subject) in page.content.decode()
    response = client.post(url, demographics_post(signed_subject, initials="ZZ"), follow=True)
    assert response.redirect_chain[-1][0] == signed_subject.get_absolute_url()
    assert sentence(locked, signed_subject) in response.content.decode()
    assert counts() == before

    reopen(locked, signed_subject, data_manager)
    response = client.post(url, demographics_post(signed_subject, initials="ZZ"))
    assert response.status_code == 302
    assert Subject.objects.get(pk=signed_subject.pk).initials == "ZZ"


@every_level
def test_admin_change_post(locked, signed_subject, closed_query, data_manager, client):
    """The admin never changes clinical data (read-only pages); what it writes about a subject
    is the query workflow: reopening a query is refused on locked data, allowed on frozen."""
    client.force_login(data_manager)
    subject_change = reverse("admin:subjects_subject_change", args=[signed_subject.pk])
    before = counts()
    assert client.post(subject_change, {"initials": "ZZ"}).status_code == 403
    assert counts() == before
    changelist = reverse("admin:queries_dataquery_changelist")
    payload = {
        "action": "reopen_queries",
        "_selected_action": [closed_query.pk],
        "apply": "yes",
        "text": "Please check again",
    }
    response = client.post(changelist, payload, follow=True)
    status = DataQuery.objects.get(pk=closed_query.pk).status
    if locked in LOCKED_LEVELS:
        html = response.content.decode()
        if locked == "study_locked":  # no site takes a query: the actions are not offered
            assert 'value="reopen_queries"' not in html
        else:
            assert sentence(locked, signed_subject) in html
        assert status == QueryStatus.CLOSED
        assert counts() == before
        reopen(locked, signed_subject, data_manager)
        client.post(changelist, payload, follow=True)
        assert DataQuery.objects.get(pk=closed_query.pk).status == QueryStatus.REOPENED
    else:
        assert status == QueryStatus.REOPENED  # frozen: the query workflow goes on


@every_level
def test_api_has_no_write_endpoint(locked, signed_subject, data_manager):
    api = APIClient()
    token = Token.objects.create(user=data_manager)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    url = f"/api/v1/subjects/{signed_subject.subject_identifier}/"
    before = counts()
    assert api.patch(url, {"initials": "ZZ"}, format="json").status_code == 405
    assert api.post("/api/v1/subjects/", {"initials": "ZZ"}, format="json").status_code == 405
    assert counts() == before


@every_level
def test_celery_task(locked, signed_subject, data_manager, new_check):
    before = counts()
    result = check_subject.apply(args=(signed_subject.pk,), throw=True).get()
    new = DataQuery.objects.filter(subject=signed_subject, check_code=FLAG.code)
    if locked in LOCKED_LEVELS:
        assert result["skipped_locked"] == 1 and result["opened"] == 0
        assert counts() == before
        reopen(locked, signed_subject, data_manager)
        result = check_subject.apply(args=(signed_subject.pk,), throw=True).get()
        assert result["opened"] == 1 and new.count() == 1
    else:  # frozen: a query may still be raised
        assert result["opened"] == 1 and new.count() == 1


@every_level
def test_management_command(locked, signed_subject, data_manager, new_check):
    before = counts()
    out = io.StringIO()
    call_command("run_edit_checks", stdout=out)
    new = DataQuery.objects.filter(subject=signed_subject, check_code=FLAG.code)
    if locked in LOCKED_LEVELS:
        assert "1 on locked data, skipped" in out.getvalue()
        assert counts() == before
        reopen(locked, signed_subject, data_manager)
        call_command("run_edit_checks", stdout=io.StringIO())
        assert new.count() == 1
    else:
        assert "1 opened" in out.getvalue() and new.count() == 1


# --- the rules around the matrix ----------------------------------------------------------------


def test_a_record_lock_covers_its_child_rows_and_leaves_the_other_records_alone(
    subject, coordinator, data_manager
):
    assessment = builders.make_eligible_assessment(subject, by=coordinator, sign=False)
    monitoring.set_record_state(assessment, LockLevel.LOCKED, user=data_manager)
    from eligibility.models import PriorTherapy

    row = PriorTherapy(assessment=assessment, agent="sorafenib", setting="adjuvant")
    with pytest.raises(DataLocked, match="is locked: no change is possible"):
        audited_save(row, user=coordinator, reason="", validate_only=())
    # The subject record is another record: it can still change.
    subject_services.update_demographics(subject, user=coordinator, reason=CHANGE, initials="QQ")


def test_frozen_data_take_queries_and_answers_but_locked_data_none(
    subject, coordinator, data_manager
):
    monitoring.set_casebook_state(subject, LockLevel.FROZEN, user=data_manager)
    query = query_services.raise_query(
        subject, field="initials", message="Please confirm", user=data_manager
    )
    query_services.answer_query(
        query, user=coordinator, text="Confirmed", reason=ResponseReason.CONFIRMED_CORRECT
    )
    query_services.close_query(query, user=data_manager, text="OK")
    monitoring.set_record_state(subject, LockLevel.LOCKED, user=data_manager)
    with pytest.raises(AccessDenied, match="is locked: no change is possible"):
        query_services.raise_query(subject, field="sex", message="Check", user=data_manager)


def test_locking_is_refused_while_queries_are_unresolved_and_reopening_needs_a_reason(
    subject, data_manager
):
    query = query_services.raise_query(
        subject, field="initials", message="Check", user=data_manager
    )
    with pytest.raises(
        monitoring.MonitoringRefused, match=f"unresolved data queries \\({query.pk}\\)"
    ):
        monitoring.set_record_state(subject, LockLevel.LOCKED, user=data_manager)
    monitoring.set_record_state(subject, LockLevel.FROZEN, user=data_manager)
    with pytest.raises(Exception, match="Give the reason to unfreeze"):
        monitoring.set_record_state(subject, LockLevel.OPEN, user=data_manager, reason=" ")
    state = monitoring.set_record_state(
        subject, LockLevel.OPEN, user=data_manager, reason="Frozen by mistake"
    )
    assert state.history.first().history_change_reason == "Frozen by mistake"
    assert [h.state for h in state.history.order_by("history_id")] == ["frozen", "open"]


def test_only_data_managers_freeze_and_lock(subject, coordinator):
    with pytest.raises(AccessDenied, match="Only data managers"):
        monitoring.set_casebook_state(subject, LockLevel.FROZEN, user=coordinator)


def test_the_study_lock_lists_what_blocks_it_and_is_allowed_once_resolved(
    site, coordinator, investigator, data_manager
):
    subject = builders.make_subject(site, by=coordinator)
    query = query_services.raise_query(
        subject, field="initials", message="Check", user=data_manager
    )
    with pytest.raises(monitoring.MonitoringRefused) as refused:
        monitoring.lock_study(user=data_manager)
    text = str(refused.value)
    assert f"1 unresolved data queries (query {query.pk} on {subject})" in text
    assert f"1 casebooks not signed ({subject})" in text

    query_services.answer_query(
        query, user=coordinator, text="Checked", reason=ResponseReason.CONFIRMED_CORRECT
    )
    query_services.close_query(query, user=data_manager, text="Fine")
    subject_services.change_status(
        subject,
        SubjectStatus.WITHDRAWN if subject.status != "screening" else SubjectStatus.SCREEN_FAILED,
        user=coordinator,
        reason="Screen failure",
        on_date=site_today(),
    )
    with pytest.raises(monitoring.MonitoringRefused, match="casebooks not signed"):
        monitoring.lock_study(user=data_manager)
    monitoring.sign_casebook(subject, user=investigator, password=PASSWORD)
    lock = monitoring.lock_study(user=data_manager, reason="Final analysis")
    assert lock.locked
    with pytest.raises(Exception, match="Give the reason to unlock"):
        monitoring.unlock_study(user=data_manager, reason="")
    with pytest.raises(AccessDenied):
        monitoring.unlock_study(user=coordinator, reason="Please")
    assert not monitoring.unlock_study(user=data_manager, reason="Late data from site 101").locked
    assert [h.locked for h in lock.history.order_by("history_id")] == [True, False]


def test_the_sweep_skips_locked_subjects_and_says_so(
    signed_subject, data_manager, new_check, site, coordinator
):
    other = builders.make_subject(site, by=coordinator)
    monitoring.set_casebook_state(signed_subject, LockLevel.LOCKED, user=data_manager)
    result = run_edit_checks(codes=[FLAG.code])
    assert result.skipped_locked == 1 and result.opened == 1
    assert "1 on locked data, skipped" in str(result)
    assert DataQuery.objects.filter(subject=other, check_code=FLAG.code).exists()


def test_randomization_is_refused_on_a_frozen_subject(site, coordinator, data_manager):
    from randomization import services as randomization
    from randomization.models import Allocation

    builders.ensure_active_list()
    subject = builders.make_eligible_subject(site, by=coordinator)
    monitoring.set_casebook_state(subject, LockLevel.FROZEN, user=data_manager)
    with pytest.raises(AccessDenied, match="is frozen"):
        randomization.randomize(subject, coordinator)
    assert not Allocation.objects.exists()


def test_the_record_state_is_kept_by_content_type(subject, data_manager):
    state = monitoring.set_record_state(subject, LockLevel.FROZEN, user=data_manager)
    assert state.content_type == ContentType.objects.get_for_model(Subject)
    assert state.record_label == f"Subject record of {subject}"
    assert state.changed_at <= timezone.now() + timedelta(seconds=1)


def test_the_lock_console_shows_what_blocks_each_subject_and_the_study(
    client, subject, data_manager, coordinator
):
    query = query_services.raise_query(
        subject, field="initials", message="Check", user=data_manager
    )
    client.force_login(data_manager)
    console = reverse("monitoring:lock_console")
    html = client.get(console).content.decode()
    row = html.split(f'id="subject-{subject}"')[1].split("</tr>")[0]
    assert "1 unresolved query; casebook not signed" in row
    response = client.post(reverse("monitoring:study_lock"), {"action": "lock"}, follow=True)
    text = response.content.decode()
    assert "The study cannot be locked: 1 unresolved data queries" in text
    assert f"query {query.pk} on {subject}" in text
    assert not monitoring.study_is_locked()
    client.force_login(coordinator)
    assert client.get(console).status_code == 403


def test_the_state_pages_refuse_the_site_and_ask_a_reason_to_reopen(
    client, subject, data_manager, coordinator
):
    url = reverse("monitoring:casebook_state", args=[subject.subject_identifier])
    client.force_login(coordinator)
    assert client.get(url).status_code == 403
    client.force_login(data_manager)
    assert client.post(url, {"level": "frozen"}).status_code == 302
    refused = client.post(url, {"level": "open", "reason": ""})
    assert "Give the reason to unfreeze the data." in refused.content.decode()
    assert monitoring.lock_state_of(subject)[0] == LockLevel.FROZEN
    client.post(url, {"level": "open", "reason": "Frozen too early"})
    assert monitoring.lock_state_of(subject) is None


def _console_rows(html: str) -> list[str]:
    return re.findall(r'<tr id="subject-([^"]+)">', html)


def _next_page(html: str) -> str | None:
    found = re.search(r'<a href="(\?page=[^"]+)">Next', html)
    return found and found.group(1).replace("&amp;", "&")


def test_the_lock_console_pages_show_every_subject_once_in_site_order(
    client, site, other_site, coordinator, other_coordinator, data_manager, monkeypatch
):
    from monitoring import selectors as monitoring_selectors

    monkeypatch.setattr(monitoring_selectors, "LOCK_CONSOLE_PAGE_SIZE", 2)
    monkeypatch.setattr(monitoring, "BLOCKERS_LISTED", 2)
    made = [builders.make_subject(other_site, by=other_coordinator) for _ in range(2)]
    made += [builders.make_subject(site, by=coordinator) for _ in range(3)]
    in_order = [s.subject_identifier for s in sorted(made, key=lambda s: (s.site.code, s.sequence))]
    client.force_login(data_manager)
    console = reverse("monitoring:lock_console")

    def walk(url: str) -> list[str]:
        seen, pages = [], 0
        while url:
            html = client.get(url).content.decode()
            seen += _console_rows(html)
            pages += 1
            url = _next_page(html) and console + _next_page(html)
        assert pages == (len(seen) + 1) // 2
        return seen

    first = client.get(console).content.decode()
    assert "Page 1 of 3 (1–2)" in first
    assert f"5 casebooks not signed ({in_order[0]}, {in_order[1]} and 3 more)" in first
    assert walk(console) == in_order
    at_site = [s.subject_identifier for s in made if s.site == site]
    assert walk(f"{console}?site={site.pk}") == sorted(at_site)
    # A casebook set from the second page comes back to that page.
    page_two = f"{console}?page=2&site={site.pk}"
    subject = _console_rows(client.get(page_two).content.decode())[0]
    response = client.post(
        reverse("monitoring:casebook_state", args=[subject]),
        {"level": "frozen", "next": page_two},
    )
    assert response.status_code == 302 and response.url == page_two
    row = client.get(page_two).content.decode().split(f'id="subject-{subject}"')[1]
    assert 'data-badge="frozen"' in row.split("</tr>")[0]
