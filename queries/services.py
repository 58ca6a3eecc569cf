"""The query life cycle: every transition is one function here, audited, and refused with a
sentence when the user or the query's status does not allow it (``core.access`` decides who).

"Data corrected" on a field is accepted only when its value changed since the query came to the
site (``uncorrected_refusal``). The edit checks' own queries are opened and closed by ``sweep``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.text import capfirst

from core import access
from core.audit import audited_save, subject_models
from core.errors import DomainError
from subjects.models import Subject

from .checks import Scope, checks_by_code
from .models import (
    AWAITING_SITE,
    UNRESOLVED,
    DataQuery,
    MessageKind,
    QueryMessage,
    QueryStatus,
    Resolution,
    ResponseReason,
)
from .sweep import close_as_resolved, lock_sweeps


class QueryRefused(DomainError):
    """The transition is not allowed for this query now; the message says why."""


class ValueUncorrected(QueryRefused):
    """A "data corrected" answer while the queried value is what it was when the query came to
    the site. ``field``: the queried field, where a page shows it."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.field = field


# --- which records and fields a query may be about ---------------------------------------------


def subject_of(record: models.Model) -> Subject:
    """The subject a CRF record belongs to (its model's ``subject_lookup``)."""
    lookup = getattr(type(record), "subject_lookup", None)
    if lookup is None:
        raise DomainError(f"A {type(record)._meta.verbose_name} is not a CRF record of a subject.")
    if lookup == "pk":
        return record
    value = record
    for part in lookup.split("__"):
        value = getattr(value, part)
    return value


def queryable_models() -> list[type[models.Model]]:
    """The CRF models a query may be raised on: every subject record but the queries (and the
    records that say ``queryable = False``: monitoring's verifications, locks, signatures)."""
    return [
        m
        for m in subject_models()
        if m._meta.app_label != "queries" and getattr(m, "queryable", True)
    ]


def per_subject_models() -> list[type[models.Model]]:
    """The CRF models with one record per subject (a bulk query names the field once)."""
    found = []
    for model in queryable_models():
        lookup = model.subject_lookup
        if lookup == "pk" or ("__" not in lookup and model._meta.get_field(lookup).one_to_one):
            found.append(model)
    return found


def queryable_fields(model: type[models.Model]) -> list[models.Field]:
    """The fields of a CRF model people enter (not its keys to the subject or the site, nor
    timestamps or derived values)."""
    skip = {model.subject_lookup.split("__")[0], "site"}
    return [
        f
        for f in model._meta.concrete_fields
        if f.editable and not f.primary_key and f.name not in skip
    ]


def _check_field(record: models.Model, field: str) -> str:
    field = (field or "").strip()
    if field and field not in {f.name for f in queryable_fields(type(record))}:
        raise DomainError(
            f"A {type(record)._meta.verbose_name} has no field {field!r} that a query can be about."
        )
    return field


def _record_label(record: models.Model, subject: Subject) -> str:
    text = str(record)
    if subject.subject_identifier not in text:
        text = f"{subject.subject_identifier} {type(record)._meta.verbose_name}"
    return text[:200]


def _message(query, kind, user, text, reason="") -> QueryMessage:
    return audited_save(
        QueryMessage(
            query=query,
            kind=kind,
            author=user,
            at=timezone.now(),
            text=text,
            response_reason=reason,
        ),
        user=user,
        reason=f"Query {query.pk} {kind}",
    )


def _text(text: str, what: str) -> str:
    text = (text or "").strip()
    if not text:
        raise DomainError(f"Write the {what}.")
    return text


# --- what a user may do with a query now --------------------------------------------------------


def allowed_actions(query: DataQuery, user) -> list[str]:
    """The transitions this module would let ``user`` make on ``query`` now: pages offer these
    and no other (a reader gets no form that would be refused)."""
    actions = []
    if query.status in AWAITING_SITE and access.can_answer_query(user, query.subject):
        actions.append("answer")
    if access.can_raise_query(user, query.subject):
        if query.status in UNRESOLVED:
            actions += ["close", "confirm"] if query.is_system else ["close"]
        if query.status in (QueryStatus.ANSWERED, QueryStatus.CLOSED):
            actions.append("reopen")
        if query.status in UNRESOLVED:
            actions.append("cancel")
    return actions


# --- raising by hand --------------------------------------------------------------------------


def raise_query(record: models.Model, *, field: str, message: str, user) -> DataQuery:
    """A manual query on one field (or the whole record, ``field=""``) of a CRF record."""
    subject = subject_of(record)
    access.require_raise_query(user, subject)
    field = _check_field(record, field)
    message = _text(message, "question to the site")
    with transaction.atomic():
        query = audited_save(
            DataQuery(
                subject=subject,
                site_id=subject.site_id,
                content_type=ContentType.objects.get_for_model(record),
                object_id=record.pk,
                field=field,
                record_label=_record_label(record, subject),
                raised_by=user,
                message=message,
                status=QueryStatus.OPEN,
                opened_at=timezone.now(),
            ),
            user=user,
            reason="Query raised",
        )
        _message(query, MessageKind.RAISED, user, message)
    return query


@dataclass(frozen=True)
class BulkResult:
    raised: list[DataQuery]
    without_record: list[Subject]  # subjects that have no such record yet: nothing raised


def raise_bulk(
    subjects, *, model: type[models.Model], field: str, message: str, user
) -> BulkResult:
    """The same manual query on the ``model`` record of each subject (one transaction)."""
    if model not in per_subject_models():
        raise DomainError(
            f"A bulk query is raised on a record each subject has once, not on a "
            f"{model._meta.verbose_name}."
        )
    subjects = list(subjects)
    if not subjects:
        raise DomainError("Choose at least one subject.")
    lookup = model.subject_lookup
    path = "pk" if lookup == "pk" else f"{lookup}_id"
    records = {
        (r.pk if lookup == "pk" else getattr(r, f"{lookup}_id")): r
        for r in model._default_manager.filter(**{f"{path}__in": [s.pk for s in subjects]})
    }
    raised, without = [], []
    with transaction.atomic():
        for subject in subjects:
            record = records.get(subject.pk)
            if record is None:
                without.append(subject)
                continue
            raised.append(raise_query(record, field=field, message=message, user=user))
    return BulkResult(raised, without)


# --- the site answers, data management closes ----------------------------------------------------


def _locked(query: DataQuery) -> DataQuery:
    return DataQuery.objects.select_for_update().select_related("subject__site").get(pk=query.pk)


def _refuse_unless(query: DataQuery, allowed, action: str) -> None:
    if query.status not in allowed:
        raise QueryRefused(
            f"Query {query.pk} is {query.get_status_display().lower()}: it cannot be {action}."
        )


def _came_to_the_site(query: DataQuery) -> tuple[str, object]:
    """("raised" or "reopened", when): the moment the query last asked the site."""
    reopened = (
        query.thread.filter(kind=MessageKind.REOPENED).order_by("-at", "-pk").values_list("at")
    ).first()
    return ("reopened", reopened[0]) if reopened else ("raised", query.opened_at)


def uncorrected_refusal(query: DataQuery) -> ValueUncorrected | None:
    """Why "data corrected" is not a true answer now, or None: the queried field holds the value
    it held when the query was raised (or last reopened), read from the record's audit trail.
    None for a query on the whole record: its correction may be in rows of its own (an AE's
    causality, the prior therapies of an eligibility assessment), whose history is not compared.
    None too when the trail cannot tell (no history row from before), or the record is gone."""
    if not query.field:
        return None
    model = query.content_type.model_class()
    record = model._base_manager.filter(pk=query.object_id).first() if model else None
    if record is None:
        return None
    event, moment = _came_to_the_site(query)
    then = (
        record.history.filter(history_date__lte=moment).order_by("-history_date", "-history_id")
    ).first()
    if then is None:
        return None
    try:
        field = model._meta.get_field(query.field)
    except FieldDoesNotExist:  # a field removed since the query was raised
        return None
    if getattr(then, field.attname) != getattr(record, field.attname):
        return None
    return ValueUncorrected(
        f"{capfirst(query.field_label)}: the value is unchanged since the query was {event}: "
        "correct it, or answer that it is confirmed correct.",
        field=query.field,
    )


def answer_query(query: DataQuery, *, user, text: str, reason: str) -> DataQuery:
    """The site's answer. "Data corrected" needs the correction saved first (or in the same
    transaction, before this call): an unchanged value is refused (``uncorrected_refusal``)."""
    access.require_answer_query(user, query.subject)
    text = _text(text, "answer")
    if reason not in ResponseReason.values:
        raise DomainError("Choose the reason of the answer (data corrected, confirmed correct…).")
    with transaction.atomic():
        query = _locked(query)
        _refuse_unless(query, AWAITING_SITE, "answered")
        if reason == ResponseReason.DATA_CORRECTED and (refusal := uncorrected_refusal(query)):
            raise refusal
        query.status = QueryStatus.ANSWERED
        audited_save(query, user=user, reason=f"Answered: {text}", validate_only=("status",))
        _message(query, MessageKind.ANSWERED, user, text, reason)
    return query


def _current_violation(query: DataQuery):
    """The violation of a system query's check on its record now, or None when it is gone."""
    check = checks_by_code().get(query.check_code)
    if check is None:
        return None
    for violation in check.find(Scope(subject_ids={query.subject_id})):
        same_record = (
            ContentType.objects.get_for_model(violation.model).pk == query.content_type_id
            and violation.object_id == query.object_id
            and violation.field == query.field
        )
        if same_record:
            return violation
    return None


def close_query(query: DataQuery, *, user, text: str, confirmed_correct: bool = False) -> DataQuery:
    """Data management closes a query. ``confirmed_correct``: the data are right as they are;
    the edit check will not raise it again until the offending values change."""
    access.require_raise_query(user, query.subject)
    text = _text(text, "reason for closing")
    with transaction.atomic():
        lock_sweeps([query.subject_id])  # the subject's runs wait: its values are read once
        query = _locked(query)
        _refuse_unless(query, UNRESOLVED, "closed")
        if confirmed_correct:
            if not query.is_system:
                raise QueryRefused(
                    "Only an edit check's query is closed as confirmed correct: close a manual "
                    "query with a plain close."
                )
            violation = _current_violation(query)
            if violation is None:  # the data changed meanwhile: it closes by itself
                close_as_resolved(query)
                _message(query, MessageKind.CLOSED, user, text)
                return query
            query.value_snapshot = violation.snapshot
            query.value_key = violation.value_key
        query.status = QueryStatus.CLOSED
        query.resolution = Resolution.CONFIRMED_CORRECT if confirmed_correct else Resolution.CLOSED
        query.closed_at = timezone.now()
        audited_save(query, user=user, reason=f"Closed: {text}", validate_only=("status",))
        _message(query, MessageKind.CLOSED, user, text)
    return query


def reopen_query(query: DataQuery, *, user, text: str) -> DataQuery:
    """Back to the site: an answer that does not settle it, or a query closed too early."""
    access.require_raise_query(user, query.subject)
    text = _text(text, "reason for reopening")
    try:
        with transaction.atomic():
            query = _locked(query)
            _refuse_unless(query, (QueryStatus.ANSWERED, QueryStatus.CLOSED), "reopened")
            query.status = QueryStatus.REOPENED
            query.resolution = ""
            query.closed_at = None
            audited_save(query, user=user, reason=f"Reopened: {text}", validate_only=("status",))
            _message(query, MessageKind.REOPENED, user, text)
    except IntegrityError as exc:
        raise QueryRefused(
            f"A newer query of {query.check_code} on this field is already open: answer that one."
        ) from exc
    return query


def cancel_query(query: DataQuery, *, user, text: str) -> DataQuery:
    """A query raised in error. An edit check does not raise it again for the same values."""
    access.require_raise_query(user, query.subject)
    text = _text(text, "reason for cancelling")
    with transaction.atomic():
        query = _locked(query)
        _refuse_unless(query, UNRESOLVED, "cancelled")
        query.status = QueryStatus.CANCELLED
        query.closed_at = timezone.now()
        audited_save(query, user=user, reason=f"Cancelled: {text}", validate_only=("status",))
        _message(query, MessageKind.CANCELLED, user, text)
    return query
