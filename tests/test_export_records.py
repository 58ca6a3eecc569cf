"""The rows every export format is made of: the registry, the scope, identifiers, and an exact
``updated_since`` (a child's change counts for its parent) and deletions feed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from adverse_events import services as ae_services
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from core.audit import audited_delete
from exports import records
from randomization.arms import Arm

from .builders import make_subject, make_subject_in_arm, site_today

pytestmark = pytest.mark.django_db

CAUSALITY_B = {"sorafenib": {"causality": "possible", "action_taken": "reduced"}}


@pytest.fixture
def ae(site, coordinator):
    load_starter_terms()
    subject = make_subject_in_arm(Arm.B, site, by=coordinator)
    return ae_services.record_adverse_event(
        subject,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality=CAUSALITY_B,
    )


def test_every_form_gives_rows_of_its_items(ae, data_manager):
    for form in records.export_forms():
        for record in records.stream(records.records(form, data_manager)):
            row = records.row(form, record, identifiers=True)
            assert list(row) == [item.name for item in form.items]
            for group in form.children:
                for child in records.child_rows(group, record):
                    assert list(child) == [item.name for item in group.items]
    ae_form = records.form_named("adverse-events")
    [record] = records.records(ae_form, data_manager)
    [causality] = records.child_rows(ae_form.children[0], record)
    assert causality == {
        "drug": "sorafenib",
        "causality": "possible",
        "related": True,
        "action_taken": "reduced",
    }


def test_no_direct_identifier_for_the_sponsor(subject, sponsor, data_manager):
    form = records.form_named("subjects")
    for hidden in ("date_of_birth", "initials", "screening_number"):
        assert hidden not in records.row(
            form, subject, identifiers=records.identifiers_for(sponsor)
        )
    assert "date_of_birth" in records.row(
        form, subject, identifiers=records.identifiers_for(data_manager)
    )


def test_a_site_user_exports_only_their_sites(subject, other_site, other_coordinator, monkeypatch):
    make_subject(other_site, by=other_coordinator)
    form = records.form_named("subjects")
    monkeypatch.setattr("core.access.can_read_exports", lambda user: True)
    visible = list(records.records(form, other_coordinator))
    assert [s.site.code for s in visible] == ["202"]


def test_a_childs_change_counts_as_a_change_of_its_parent(ae, coordinator, data_manager):
    form = records.form_named("adverse-events")
    since = timezone.now() + timedelta(microseconds=1)
    assert not records.records(form, data_manager, since=since).exists()
    ae_services.update_adverse_event(
        ae,
        user=coordinator,
        reason="Causality reassessed",
        causality={"sorafenib": {"causality": "probable", "action_taken": "reduced"}},
    )
    assert list(records.records(form, data_manager, since=since)) == [ae]


def test_the_deletions_feed_lists_exactly_the_deleted_records(site, coordinator, data_manager):
    keep = make_subject(site, by=coordinator, consented=False)
    gone = make_subject(site, by=coordinator, consented=False)
    gone_id, since = gone.pk, timezone.now()
    audited_delete(gone, user=coordinator, reason="Registered twice")
    [deletion] = records.deletions(data_manager, since)
    assert (deletion.export, deletion.record_id, deletion.reason) == (
        "subjects",
        gone_id,
        "Registered twice",
    )
    assert deletion.deleted_by == "coordinator"
    assert keep.pk != gone_id


def test_an_unknown_export_is_refused_with_the_list():
    with pytest.raises(records.UnknownForm, match="There is no export 'labs'"):
        records.form_named("labs")


def test_signing_counts_as_a_change_of_the_eligibility(subject, coordinator, data_manager):
    from eligibility import services as eligibility_services

    from .builders import PASSWORD, make_eligible_assessment, make_user

    assessment = make_eligible_assessment(subject, by=coordinator, sign=False)
    form = records.form_named("eligibility")
    since = timezone.now() + timedelta(microseconds=1)
    assert not records.records(form, data_manager, since=since).exists()
    investigator = make_user("investigator", subject.site)
    eligibility_services.sign_eligibility(assessment, user=investigator, password=PASSWORD)
    assert list(records.records(form, data_manager, since=since)) == [assessment]
