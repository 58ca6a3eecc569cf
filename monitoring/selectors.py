"""Reads of the monitoring app: the SDV records and progress (per site, per form), the worklist,
the lock console's rows. Every read is narrowed to the user's sites (``core.access``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import BooleanField, Count, F, IntegerField, Q, Value
from django.db.models.functions import Cast
from django.utils.text import capfirst

from core import access
from queries.models import UNRESOLVED
from subjects.models import Subject

from .models import CasebookSignature, CasebookState, LockLevel, RecordState, SourceDataVerification
from .sdv_plan import FULL, condition_field, plan, requirement_of, sdv_models

WORKLIST_ROWS = 200


@dataclass
class SdvRow:
    """One record the plan may ask a monitor to verify."""

    form: str  # the kind of record, as people name it
    label: str  # "app_label.model"
    content_type_id: int
    object_id: int
    subject_id: int
    subject_identifier: str
    site_code: str
    requirement: str  # sdv_plan.FULL, SAMPLE or ""
    verified: bool = False
    verified_by: str = ""
    verified_at: object = None

    @property
    def required(self) -> bool:
        return bool(self.requirement)


def _subject_paths(model) -> tuple[str, str, str]:
    lookup = model.subject_lookup
    if lookup == "pk":
        return "pk", "subject_identifier", "site__code"
    return f"{lookup}_id", f"{lookup}__subject_identifier", f"{lookup}__site__code"


def sdv_rows(user, *, site_id: int | None = None, subject: Subject | None = None) -> list[SdvRow]:
    """Every record of the SDV plan's kinds that ``user`` sees (of one site or one subject), with
    what the plan asks of it and whether it is verified: two queries (the records of every kind
    in one UNION, and the verifications), whatever the size of the study."""
    the_plan = plan()
    models = sdv_models()
    parts = []
    for kind, model in enumerate(models):
        records = access.scope_to_user(model.objects.all(), user)
        site_path = access.site_lookup_of(model)
        if site_id is not None:
            records = records.filter(**{site_path: site_id})
        if subject is not None:
            lookup = model.subject_lookup
            records = records.filter(**{"pk" if lookup == "pk" else lookup: subject.pk})
        subject_id, identifier, site_code = _subject_paths(model)
        condition = condition_field(model, the_plan)
        parts.append(
            records.order_by()
            .annotate(
                _kind=Value(kind, output_field=IntegerField()),
                _pk=F("pk"),
                _subject=F(subject_id),
                _identifier=F(identifier),
                _site=F(site_code),
                _condition=F(condition) if condition else Cast(Value(None), BooleanField()),
            )
            .values_list("_kind", "_pk", "_subject", "_identifier", "_site", "_condition")
        )
    found = list(parts[0].union(*parts[1:], all=True)) if parts else []
    found.sort(key=lambda r: (r[3], r[0], r[1]))
    described = [
        (
            capfirst(str(m._meta.verbose_name)),
            m._meta.label_lower,
            ContentType.objects.get_for_model(m).pk,
        )
        for m in models
    ]
    rows = []
    for kind, pk, subj, ident, code, cond in found:
        form, label, content_type_id = described[kind]
        requirement = requirement_of(label, pk, subj, cond, the_plan)
        rows.append(SdvRow(form, label, content_type_id, pk, subj, ident, code, requirement))
    marks = SourceDataVerification.objects.filter(verified=True)
    if subject is not None:
        marks = marks.filter(subject=subject)
    elif site_id is not None:
        marks = marks.filter(subject__site_id=site_id)
    verified = {
        (ct, oid): (by, at)
        for ct, oid, by, at in access.scope_to_user(marks, user).values_list(
            "content_type_id", "object_id", "verified_by__username", "verified_at"
        )
    }
    for row in rows:
        mark = verified.get((row.content_type_id, row.object_id))
        if mark:
            row.verified, (row.verified_by, row.verified_at) = True, mark
    return rows


@dataclass
class Progress:
    name: str
    required: int = 0
    verified: int = 0  # of the required
    verified_other: int = 0  # verified although the plan does not ask for it

    @property
    def percent(self) -> float | None:
        return round(100 * self.verified / self.required, 1) if self.required else None

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "required": self.required,
            "verified": self.verified,
            "verified_outside_plan": self.verified_other,
            "percent_verified": self.percent,
        }


def _count(progress: Progress, row: SdvRow) -> None:
    if row.required:
        progress.required += 1
        progress.verified += row.verified
    elif row.verified:
        progress.verified_other += 1


def sdv_progress(user, *, site_id: int | None = None, rows: list[SdvRow] | None = None) -> dict:
    """% of the records the plan asks for that are verified: per site, per form, overall."""
    rows = sdv_rows(user, site_id=site_id) if rows is None else rows
    by_site: dict[str, Progress] = {}
    by_form: dict[str, Progress] = {}
    total = Progress("All")
    for row in rows:
        _count(by_site.setdefault(row.site_code, Progress(row.site_code)), row)
        _count(by_form.setdefault(row.form, Progress(row.form)), row)
        _count(total, row)
    return {
        "sites": [by_site[code] for code in sorted(by_site)],
        "forms": list(by_form.values()),
        "total": total,
        "plan": plan(),
    }


def worklist(rows: list[SdvRow]) -> list[SdvRow]:
    """The records the plan asks for that are not verified yet: full verification first."""
    waiting = [row for row in rows if row.required and not row.verified]
    waiting.sort(key=lambda r: (r.requirement != FULL, r.site_code, r.subject_identifier, r.form))
    return waiting


# --- freeze, lock and the lock console ---------------------------------------------------------


def record_state(record) -> RecordState | None:
    content_type = ContentType.objects.get_for_model(type(record))
    return RecordState.objects.filter(content_type=content_type, object_id=record.pk).first()


def casebook_state(subject) -> CasebookState | None:
    return CasebookState.objects.filter(subject=subject).first()


def verification_of(record) -> SourceDataVerification | None:
    content_type = ContentType.objects.get_for_model(type(record))
    return (
        SourceDataVerification.objects.filter(content_type=content_type, object_id=record.pk)
        .select_related("verified_by")
        .first()
    )


@dataclass
class ConsoleRow:
    subject: Subject
    state: str
    signature: CasebookSignature | None
    signature_valid: bool
    unresolved: int
    frozen_records: int
    locked_records: int

    @property
    def blockers(self) -> list[str]:
        found = []
        if self.unresolved:
            found.append(
                f"{self.unresolved} unresolved quer{'y' if self.unresolved == 1 else 'ies'}"
            )
        if self.signature is None:
            found.append("casebook not signed")
        elif not self.signature_valid:
            found.append("casebook signature no longer matches the data")
        return found


def lock_console_rows(user, *, site_id: int | None = None) -> list[ConsoleRow]:
    """Each subject with its casebook state, signature, unresolved queries and lock blockers."""
    subjects = access.scope_to_user(Subject.objects.select_related("site"), user)
    if site_id is not None:
        subjects = subjects.filter(site_id=site_id)
    subjects = subjects.annotate(
        unresolved=Count("data_queries", filter=Q(data_queries__status__in=UNRESOLVED))
    )
    states = dict(CasebookState.objects.values_list("subject_id", "state"))
    signatures = {s.subject_id: s for s in CasebookSignature.objects.filter(void=False)}
    record_counts = defaultdict(lambda: {LockLevel.FROZEN: 0, LockLevel.LOCKED: 0})
    for subject_id, state in RecordState.objects.exclude(state=LockLevel.OPEN).values_list(
        "subject_id", "state"
    ):
        record_counts[subject_id][state] += 1
    rows = []
    for subject in subjects.order_by("site__code", "sequence"):
        signature = signatures.get(subject.pk)
        rows.append(
            ConsoleRow(
                subject,
                states.get(subject.pk, LockLevel.OPEN),
                signature,
                signature is not None,  # any change voids it (the lock checks the hash)
                subject.unresolved,
                record_counts[subject.pk][LockLevel.FROZEN],
                record_counts[subject.pk][LockLevel.LOCKED],
            )
        )
    return rows
