"""Reads of the monitoring app: the SDV records and progress (per site, per form), the worklist,
the lock console's rows. Every read is narrowed to the user's sites (``core.access``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.text import capfirst

from core import access
from queries.models import DataQuery
from subjects.models import Site, Subject

from .models import CasebookSignature, CasebookState, LockLevel, RecordState, SourceDataVerification
from .sdv_plan import FULL, SAMPLE, full_expression, plan, required_expression, sdv_models

WORKLIST_PAGE_SIZE = 50
LOCK_CONSOLE_PAGE_SIZE = 50  # subjects a page


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


@dataclass(frozen=True)
class _Kind:
    """One kind of record of the plan, and the SQL that reads its rows."""

    number: int  # its place in ``sdv_models()``
    form: str
    label: str
    content_type_id: int
    form_rank: int  # its place among the forms' names (the worklist's order)
    records: QuerySet  # the rows the user sees (of the site or the subject asked for)
    subject: str  # the path of the row's subject id
    identifier: str  # ... of its subject's identifier
    site_code: str  # ... of its site's code


def _subject_paths(model) -> tuple[str, str, str]:
    lookup = model.subject_lookup
    if lookup == "pk":
        return "pk", "subject_identifier", "site__code"
    return f"{lookup}_id", f"{lookup}__subject_identifier", f"{lookup}__site__code"


def _site_id_path(kind: _Kind) -> str:
    lookup = kind.records.model.subject_lookup
    return "site_id" if lookup == "pk" else f"{lookup}__site_id"


def _kinds(user, *, site_id: int | None = None, subject: Subject | None = None) -> list[_Kind]:
    models = sdv_models()
    forms = [capfirst(str(m._meta.verbose_name)) for m in models]
    ranks = {form: rank for rank, form in enumerate(sorted(set(forms)))}
    kinds = []
    for number, (model, form) in enumerate(zip(models, forms, strict=True)):
        records = access.scope_to_user(model.objects.all(), user)
        if site_id is not None:
            records = records.filter(**{access.site_lookup_of(model): site_id})
        if subject is not None:
            lookup = model.subject_lookup
            records = records.filter(**{"pk" if lookup == "pk" else lookup: subject.pk})
        subject_id, identifier, site_code = _subject_paths(model)
        kinds.append(
            _Kind(
                number,
                form,
                model._meta.label_lower,
                ContentType.objects.get_for_model(model).pk,
                ranks[form],
                records.order_by(),
                subject_id,
                identifier,
                site_code,
            )
        )
    return kinds


def _annotated(kind: _Kind, the_plan: dict) -> QuerySet:
    """The kind's rows with ``_full``, ``_required`` and ``_verified`` (booleans, in SQL)."""
    model = kind.records.model
    verified = SourceDataVerification.objects.filter(
        content_type_id=kind.content_type_id, verified=True
    ).values("object_id")
    return kind.records.annotate(
        _full=full_expression(model, the_plan),
        _required=required_expression(model, F(kind.subject), the_plan),
        _verified=ExpressionWrapper(Q(pk__in=verified), output_field=BooleanField()),
    )


def _named(kind: _Kind, records: QuerySet) -> QuerySet:
    """``records`` with what names a row on the SDV pages: its kind, id, subject (id and
    identifier) and site code."""
    return records.annotate(
        _kind=Value(kind.number, output_field=IntegerField()),
        _pk=F("pk"),
        _subject=F(kind.subject),
        _identifier=F(kind.identifier),
        _site=F(kind.site_code),
    )


def _requirement(full: bool, required: bool) -> str:
    return FULL if full else SAMPLE if required else ""


def sdv_rows(user, *, site_id: int | None = None, subject: Subject | None = None) -> list[SdvRow]:
    """Every record of the SDV plan's kinds that ``user`` sees (of one site or one subject), with
    what the plan asks of it and whether it is verified: two queries (the records of every kind
    in one UNION, with their requirement decided in SQL, and the verifications). One row per
    record: for a subject's records (the subject page); the study's are counted
    (``sdv_progress``) and paged (``Worklist``) by the database."""
    the_plan = plan()
    kinds = _kinds(user, site_id=site_id, subject=subject)
    parts = [
        _named(kind, _annotated(kind, the_plan)).values_list(
            "_kind", "_pk", "_subject", "_identifier", "_site", "_full", "_required"
        )
        for kind in kinds
    ]
    found = list(parts[0].union(*parts[1:], all=True)) if parts else []
    found.sort(key=lambda r: (r[3], r[0], r[1]))
    rows = []
    for number, pk, subj, ident, code, full, required in found:
        kind = kinds[number]
        requirement = _requirement(bool(full), bool(required))
        rows.append(
            SdvRow(kind.form, kind.label, kind.content_type_id, pk, subj, ident, code, requirement)
        )
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

    def add(self, required: int, verified: int, verified_other: int) -> None:
        self.required += required
        self.verified += verified
        self.verified_other += verified_other


def sdv_progress(user, *, site_id: int | None = None) -> dict:
    """% of the records the plan asks for that are verified: per site, per form, overall. Two
    queries, whatever the size of the study: each kind's rows counted by the database per site
    (their answers to the plan's questions, full? asked for? verified?, decided in SQL once a
    row, ``sdv_plan``), the kinds in one UNION: a row a site and kind; and the sites' codes."""
    the_plan = plan()
    kinds = _kinds(user, site_id=site_id)
    required, verified, full = Q(_required=True), Q(_verified=True), Q(_full=True)
    parts = [
        _annotated(kind, the_plan)
        .values(_site_id=F(_site_id_path(kind)))
        .annotate(
            _kind=Value(kind.number, output_field=IntegerField()),
            _asked=Count("pk", filter=required),
            _done=Count("pk", filter=required & verified),
            _other=Count("pk", filter=~required & verified),
            _full_waiting=Count("pk", filter=full & ~verified),
        )
        .values_list("_kind", "_site_id", "_asked", "_done", "_other", "_full_waiting")
        for kind in kinds
    ]
    counted = list(parts[0].union(*parts[1:], all=True)) if parts else []
    codes = dict(Site.objects.filter(pk__in={c[1] for c in counted}).values_list("pk", "code"))
    by_site: dict[str, Progress] = {}
    by_form: dict[str, Progress] = {}  # the forms that have records, in the plan's order
    total = Progress("All")
    full_waiting = 0
    for number, site, asked, done, other, waiting in sorted(counted, key=lambda c: c[0]):
        full_waiting += waiting
        form, code = kinds[number].form, codes[site]
        by_site.setdefault(code, Progress(code)).add(asked, done, other)
        by_form.setdefault(form, Progress(form)).add(asked, done, other)
        total.add(asked, done, other)
    return {
        "sites": [by_site[code] for code in sorted(by_site)],
        "forms": list(by_form.values()),
        "total": total,
        "full_waiting": full_waiting,  # waiting for verification: those the plan asks in full
        "plan": the_plan,
    }


class Worklist:
    """The records the plan asks for that are not verified yet, full verification first (then
    by site, subject, form and record), for ``django.core.paginator.Paginator``: its length is
    the progress's (no query), a slice is one query for that page's rows alone: of the records
    verified in full (no sample's hash to compute), or of the sample, or of both for the page
    where the first end and the second begins."""

    def __init__(self, user, progress: dict, *, site_id: int | None = None):
        self.the_plan = plan()
        self.kinds = _kinds(user, site_id=site_id)
        self.length = progress["total"].required - progress["total"].verified
        self.full_length = progress["full_waiting"]

    def count(self) -> int:
        return self.length

    def __len__(self) -> int:
        return self.length

    def _may_be(self, kind: _Kind, full: bool | None) -> bool:
        asked = self.the_plan["full"]
        may_be_full = kind.label in asked
        may_be_sampled = self.the_plan["sample_percent"] > 0 and not (
            kind.label in asked and not asked[kind.label]
        )
        return {True: may_be_full, False: may_be_sampled}.get(full, may_be_full or may_be_sampled)

    def _read(self, full: bool | None, start: int, stop: int) -> list[SdvRow]:
        """Rows ``start:stop`` of the full verifications (``full`` True), of the sample (False)
        or of the whole worklist (None)."""
        wanted = {
            True: Q(_full=True, _verified=False),
            False: Q(_full=False, _required=True, _verified=False),
            None: Q(_required=True, _verified=False),
        }[full]
        parts = [
            _named(kind, _annotated(kind, self.the_plan).filter(wanted))
            .annotate(_rank=Value(kind.form_rank, output_field=IntegerField()))
            .values_list("_kind", "_pk", "_subject", "_identifier", "_site", "_full", "_rank")
            for kind in self.kinds
            if self._may_be(kind, full)
        ]
        if not parts or start >= stop:
            return []
        query = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        query = query.order_by("-_full", "_site", "_identifier", "_rank", "_pk")
        rows = []
        for number, pk, subj, ident, code, is_full, _ in query[start:stop]:
            kind = self.kinds[number]
            requirement = FULL if is_full else SAMPLE
            rows.append(
                SdvRow(
                    kind.form, kind.label, kind.content_type_id, pk, subj, ident, code, requirement
                )
            )
        return rows

    def __getitem__(self, page: slice) -> list[SdvRow]:
        if not isinstance(page, slice) or page.step is not None:
            raise TypeError("The worklist is read a page (a slice) at a time.")
        start = page.start or 0
        stop = self.length if page.stop is None else min(page.stop, self.length)
        full = self.full_length
        if stop <= full:
            return self._read(True, start, stop)
        if start >= full:
            return self._read(False, start - full, stop - full)
        return self._read(None, start, stop)


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


class LockConsole:
    """The subjects of the lock console, by site code then sequence, for
    ``django.core.paginator.Paginator``: its length is one COUNT, a slice three queries: the
    page's subject ids, those subjects with their casebook state, unresolved queries and frozen
    and locked records (subqueries), and their signatures."""

    def __init__(self, user, *, site_id: int | None = None):
        subjects = access.scope_to_user(Subject.objects.select_related("site"), user)
        if site_id is not None:
            subjects = subjects.filter(site_id=site_id)
        self.subjects = subjects.order_by("site__code", "sequence")

    def count(self) -> int:
        return self.subjects.count()

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, page: slice) -> list[ConsoleRow]:
        if not isinstance(page, slice) or page.step is not None:
            raise TypeError("The lock console is read a page (a slice) at a time.")
        # The page's ids first: the subqueries then run for its rows alone, not for every row
        # the database sorts and skips on the way to a deep page.
        ids = list(self.subjects.values_list("pk", flat=True)[page])
        of_subject = {"subject": OuterRef("pk")}
        states = RecordState.objects.filter(**of_subject)
        subjects = list(
            self.subjects.filter(pk__in=ids).annotate(
                _state=Coalesce(
                    Subquery(CasebookState.objects.filter(**of_subject).values("state")[:1]),
                    Value(LockLevel.OPEN),
                ),
                _unresolved=_count(DataQuery.objects.unresolved().filter(**of_subject)),
                _frozen=_count(states.filter(state=LockLevel.FROZEN)),
                _locked=_count(states.filter(state=LockLevel.LOCKED)),
            )
        )
        signatures = {
            s.subject_id: s
            for s in CasebookSignature.objects.filter(
                void=False, subject_id__in=[subject.pk for subject in subjects]
            )
        }
        rows = []
        for subject in subjects:
            signature = signatures.get(subject.pk)
            rows.append(
                ConsoleRow(
                    subject,
                    subject._state,
                    signature,
                    signature is not None,  # any change voids it (the lock checks the hash)
                    subject._unresolved,
                    subject._frozen,
                    subject._locked,
                )
            )
        return rows


def _count(rows: QuerySet) -> Coalesce:
    """How many of ``rows`` (filtered by an ``OuterRef``): a scalar subquery."""
    counted = rows.order_by().values("subject_id").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))
