"""Answering a data query beside a field of a CRF form saves the form's correction and the answer
together, in one transaction (never the answer alone while the edits are thrown away); and "data
corrected" is refused while the queried value is what it was when the query was raised (or
reopened), on every path: the service, the CRF page, the query's own page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from adverse_events import services as ae_services
from adverse_events.models import AdverseEvent
from queries import services
from queries.models import DataQuery, MessageKind, QueryStatus, ResponseReason

from .builders import days_ago, make_randomized_subject, make_subject, site_today
from .builders.ctcae import term
from .builders.forms import post_forms

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("ctcae")]

CORRECTED = ResponseReason.DATA_CORRECTED
UNCHANGED = (
    "Grade: the value is unchanged since the query was raised: correct it, or answer that it "
    "is confirmed correct."
)


@pytest.fixture
def ae(site, coordinator):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(30))
    return ae_services.record_adverse_event(
        subject,
        user=coordinator,
        term=term("Hypertension"),
        grade=3,
        onset_date=days_ago(2),
        ongoing=True,
        outcome="not_recovered",
    )


@pytest.fixture
def grade_query(ae, data_manager):
    return services.raise_query(
        ae, field="grade", message="Grade 3, but the notes say 4?", user=data_manager
    )


def regrade(ae, user, grade, reason="Grade per the source notes"):
    return ae_services.update_adverse_event(ae, user=user, reason=reason, grade=grade)


def answers(query) -> list[tuple[str, str]]:
    return list(
        query.thread.filter(kind=MessageKind.ANSWERED).values_list("response_reason", "text")
    )


# --- the service ---------------------------------------------------------------------------------


def test_data_corrected_is_refused_while_the_value_is_unchanged(grade_query, coordinator):
    with pytest.raises(services.ValueUncorrected) as refused:
        services.answer_query(grade_query, user=coordinator, text="Corrected.", reason=CORRECTED)
    assert str(refused.value) == UNCHANGED
    assert refused.value.field == "grade"
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.OPEN and answers(grade_query) == []


def test_data_corrected_is_accepted_once_the_value_changed(ae, grade_query, coordinator):
    regrade(ae, coordinator, 4)
    services.answer_query(grade_query, user=coordinator, text="Grade 4.", reason=CORRECTED)
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.ANSWERED
    assert answers(grade_query) == [(CORRECTED, "Grade 4.")]


def test_a_value_changed_and_changed_back_is_not_corrected(ae, grade_query, coordinator):
    regrade(ae, coordinator, 4)
    regrade(ae, coordinator, 3, reason="Back to grade 3: entered on the wrong AE")
    with pytest.raises(services.ValueUncorrected, match="is unchanged since the query was raised"):
        services.answer_query(grade_query, user=coordinator, text="Corrected.", reason=CORRECTED)


def test_another_field_changed_is_not_a_correction_of_the_queried_one(ae, grade_query, coordinator):
    ae_services.update_adverse_event(
        ae, user=coordinator, reason="Verbatim added", verbatim_term="High blood pressure"
    )
    with pytest.raises(services.ValueUncorrected):
        services.answer_query(grade_query, user=coordinator, text="Corrected.", reason=CORRECTED)


def test_other_answers_need_no_change(grade_query, coordinator):
    services.answer_query(
        grade_query, user=coordinator, text="Grade 3 per notes.", reason="confirmed_correct"
    )
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.ANSWERED


def test_a_reopened_query_needs_a_change_since_it_was_reopened(
    ae, grade_query, coordinator, data_manager
):
    regrade(ae, coordinator, 4)
    services.answer_query(grade_query, user=coordinator, text="Grade 4.", reason=CORRECTED)
    services.reopen_query(grade_query, user=data_manager, text="The notes say grade 2.")
    with pytest.raises(services.ValueUncorrected, match="unchanged since the query was reopened"):
        services.answer_query(grade_query, user=coordinator, text="Again.", reason=CORRECTED)
    regrade(ae, coordinator, 2)
    services.answer_query(grade_query, user=coordinator, text="Grade 2.", reason=CORRECTED)
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.ANSWERED


def test_a_query_on_the_whole_record_is_not_checked(ae, coordinator, data_manager):
    # Its correction may be in rows of its own, whose history is not compared: never refused.
    query = services.raise_query(ae, field="", message="Check this AE", user=data_manager)
    services.answer_query(query, user=coordinator, text="Fixed.", reason=CORRECTED)
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED


def test_a_whole_record_query_corrected_in_a_causality_row_is_answered(
    site, coordinator, data_manager
):
    subject = make_randomized_subject(site, by=coordinator)
    drugs = ae_services.study_drugs_of(subject)
    assessed = {drug: {"causality": "unlikely", "action_taken": "not_changed"} for drug in drugs}
    ae = ae_services.record_adverse_event(
        subject,
        user=coordinator,
        term=term("Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality=assessed,
    )
    query = services.raise_query(
        ae, field="", message="Causality: the notes say probable?", user=data_manager
    )
    ae_services.update_adverse_event(
        ae,
        user=coordinator,
        reason="Causality per the investigator's notes",
        causality={drugs[0]: {"causality": "probable", "action_taken": "not_changed"}},
    )
    services.answer_query(query, user=coordinator, text="Causality corrected.", reason=CORRECTED)
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    assert answers(query) == [(CORRECTED, "Causality corrected.")]
    assert ae.causalities.get(drug=drugs[0]).causality == "probable"


def test_the_querys_own_page_refuses_an_uncorrected_answer_with_the_sentence(
    client, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        f"/queries/{grade_query.pk}/answer/",
        {"answer-reason": CORRECTED, "answer-text": "Corrected."},
    )
    assert response.status_code == 200
    assert UNCHANGED in response.content.decode()
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.OPEN


# --- the CRF page: the answer sent with the form -------------------------------------------------


def edit_url(ae) -> str:
    return reverse("adverse_events:edit", args=[ae.subject.subject_identifier, ae.ae_number])


def ae_post(client, ae, **changes) -> dict:
    """The AE form as its page sends it: unchanged, but for ``changes``."""
    html = client.get(edit_url(ae)).content.decode()
    (crf,) = [form for form in post_forms(html) if "grade" in form.data()]
    return {**crf.data(), **changes}


def with_answer(query, reason, text) -> dict:
    """An answer given with its "Answer" button: the form and the answer in one POST."""
    return {"answer-query": str(query.pk)} | typed_answer(query, reason, text)


def assert_answered_on_the_page(client, ae, query) -> None:
    """The query answered "corrected", and the AE's page says both saves."""
    query.refresh_from_db()
    assert query.status == QueryStatus.ANSWERED
    assert answers(query) == [(CORRECTED, "Grade corrected to 4.")]
    page = client.get(edit_url(ae)).content.decode()
    assert f"AE {ae.ae_number} updated. Query {query.pk} answered." in page


def test_the_crf_page_puts_the_answer_inside_the_form(client, ae, grade_query, coordinator):
    client.force_login(coordinator)
    html = client.get(edit_url(ae)).content.decode()
    assert f'name="query-{grade_query.pk}-reason"' in html
    assert f'name="answer-query" value="{grade_query.pk}"' in html
    # no separate form that would send the answer without the form's changes
    assert f'id="query-answer-{grade_query.pk}"' not in html


def test_the_correction_and_the_answer_are_saved_together(client, ae, grade_query, coordinator):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4", reason="Grade 4 per the source notes")
        | with_answer(grade_query, CORRECTED, "Grade corrected to 4."),
    )
    assert response.status_code == 302 and response["Location"] == edit_url(ae)
    ae.refresh_from_db()
    assert ae.grade == 4
    last = ae.history.latest("history_id")
    assert (last.grade, last.history_user, last.history_change_reason) == (
        4,
        coordinator,
        "Grade 4 per the source notes",
    )
    assert_answered_on_the_page(client, ae, grade_query)


def test_a_refused_answer_saves_nothing_and_keeps_what_was_typed(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    rows = ae.history.count()
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4", reason="Grade 4 per the source notes")
        | with_answer(grade_query, CORRECTED, "   "),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Write the answer." in html
    assert '<option value="4" selected>' in html  # the edit is still on the page
    assert ">\nGrade 4 per the source notes</textarea>" in html  # the reason for change
    assert f'<option value="{CORRECTED}" selected>' in html
    ae.refresh_from_db()
    assert ae.grade == 3 and ae.history.count() == rows  # neither saved
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.OPEN


def test_a_correction_needs_its_reason_for_change_before_anything_is_saved(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4") | with_answer(grade_query, CORRECTED, "Grade 4."),
    )
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    ae.refresh_from_db()
    grade_query.refresh_from_db()
    assert (ae.grade, grade_query.status) == (3, QueryStatus.OPEN)


def test_data_corrected_on_an_unchanged_form_is_refused_with_the_sentence(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae) | with_answer(grade_query, CORRECTED, "Corrected."),
        follow=True,
    )
    assert UNCHANGED in response.content.decode()
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.OPEN


def test_confirmed_correct_on_an_unchanged_form_answers_without_a_reason_for_change(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    rows = ae.history.count()
    response = client.post(
        edit_url(ae),
        ae_post(client, ae)
        | with_answer(grade_query, "confirmed_correct", "Grade 3 per the notes."),
    )
    assert response.status_code == 302 and response["Location"] == edit_url(ae)
    grade_query.refresh_from_db()
    assert grade_query.status == QueryStatus.ANSWERED
    assert AdverseEvent.objects.get(pk=ae.pk).history.count() == rows  # the AE not re-saved


def test_an_answer_naming_another_records_query_is_refused(
    client, ae, grade_query, coordinator, data_manager
):
    other = ae_services.record_adverse_event(
        ae.subject,
        user=coordinator,
        term=term("Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
    )
    client.force_login(coordinator)
    response = client.post(
        edit_url(other),
        ae_post(client, other) | with_answer(grade_query, "confirmed_correct", "Fine."),
        follow=True,
    )
    assert "That query is not an unresolved query of this record." in response.content.decode()
    assert DataQuery.objects.get(pk=grade_query.pk).status == QueryStatus.OPEN


def typed_answer(query, reason, text) -> dict:
    """An answer filled in beside the field, the form sent by "Save" or Enter: no "Answer"."""
    return {f"query-{query.pk}-reason": reason, f"query-{query.pk}-text": text}


def test_an_answer_filled_in_and_sent_by_save_is_answered_with_the_correction(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4", reason="Grade 4 per the source notes")
        | typed_answer(grade_query, CORRECTED, "Grade corrected to 4."),
    )
    assert response.status_code == 302 and response["Location"] == edit_url(ae)
    ae.refresh_from_db()
    assert ae.grade == 4
    assert_answered_on_the_page(client, ae, grade_query)


def test_an_answer_sent_by_save_without_its_response_is_refused_not_dropped(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4", reason="Grade 4 per the source notes")
        | typed_answer(grade_query, "", "Grade corrected to 4."),
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Choose the reason of the answer" in html
    assert 'value="Grade corrected to 4."' in html  # what was typed is still on the page
    ae.refresh_from_db()
    grade_query.refresh_from_db()
    assert (ae.grade, grade_query.status) == (3, QueryStatus.OPEN)


def test_a_save_with_the_answer_inputs_left_empty_answers_nothing(
    client, ae, grade_query, coordinator
):
    client.force_login(coordinator)
    response = client.post(
        edit_url(ae),
        ae_post(client, ae, grade="4", reason="Grade 4 per the source notes")
        | typed_answer(grade_query, "", "  "),
    )
    assert response.status_code == 302
    ae.refresh_from_db()
    grade_query.refresh_from_db()
    assert (ae.grade, grade_query.status) == (4, QueryStatus.OPEN)
