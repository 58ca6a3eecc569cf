"""The SDTM-like domains of the Dataset-JSON export: DM, DS, IE, AE and SUPPAE, mapped from the
registry's records (``exports.records``: scoped to the user, never a direct identifier).

A dataset here is its name, label, columns (``Column``: Dataset-JSON column metadata) and rows
(``rows(user)``: lists in column order, streamed record by record; ``Reader`` reads the
records' item values without model instances where the items are paths of model fields).
``count(user)`` gives the number of rows up front when one query can tell it; ``None`` lets the
writer count them while it spools the rows (``exports.dataset_json``).

Conventions (SDTMIG 3.x):

* STUDYID is ``settings.EDC_STUDY_ID``; USUBJID is STUDYID + "-" + the subject identifier;
  SUBJID the subject identifier; SITEID the site code.
* Dates are ISO 8601 (``YYYY-MM-DD``); date-times ISO 8601 in UTC without an offset
  (``YYYY-MM-DDThh:mm:ss``); booleans are ``Y`` / ``N``.
* Controlled terms: SEX, AGEU, COUNTRY (ISO 3166-1 alpha-3), AEOUT, AEACN (ACN), the NY flags,
  DSDECOD (NCOMPLT / protocol milestones), IECAT. AEREL has no CDISC code list: the five-point
  scale in capitals (NOT RELATED ... DEFINITELY RELATED).
* DM (one row per subject the user sees): ARMCD/ARM from the allocation; screen failures
  ``SCRNFAIL`` / "Screen Failure", subjects not (yet) randomized ``NOTASSGN`` / "Not Assigned".
  ACTARMCD/ACTARM from the exposure CRFs (``treatment.selectors.exposure_spans``): a randomized
  subject who took no study drug (yet) is ``NOTTRT`` / "Not Treated"; one who took drugs of
  the assigned arm (any of them: an arm A subject given toripalimab alone is in arm A) is in
  that arm; drugs of the other arm would make it ``UNPLAN`` / "Unplanned Treatment", which the
  treatment services refuse to record (and an edit check flags), so it only appears if data
  came in some other way. Screen failures and subjects not assigned keep their ARMCD.
  RFSTDTC (the reference start, sponsor-defined) is the randomization date: the site's date of
  the allocation (``randomization.selectors``), the origin of the visit schedule and of PFS
  and OS. RFXSTDTC / RFXENDTC are the first and last exposure to study drug: the earliest
  EXSTDTC and the latest EXENDTC (EXSTDTC of a sorafenib period still ongoing) of the doses
  given and the periods not held. RFENDTC is not exported (no end-of-participation rule is
  defined for it: the end of study is in DS).
* DS: informed consent and randomization (protocol milestones) and each disposition status the
  subject reached (screen failure, end of treatment, withdrawal, death, completed), dated with
  the status date recorded for it (from the subject's history: a later status does not hide an
  earlier one).
* IE: one row per criterion not met at the evaluation (outcome FAIL: an inclusion not met,
  IEORRES ``N``; an exclusion met, IEORRES ``Y``); a criterion with missing data is not a row.
  IEDTC is the date of the investigator's valid signature, else of the CRF's last save (UTC).
* AE: AESEQ = AESPID = the AE number (stable across exports: SUPPAE's IDVARVAL stays valid);
  AEREL the worst causality over the study drugs, AEACN the action (``MULTIPLE`` when the drugs'
  actions differ). SUPPAE: per-drug causality and action (AERELn / AEACNn, n = the drug's
  number: 1 toripalimab, 2 bevacizumab, 3 sorafenib), the irAE flag (AEIRAE), and the SAE clock
  times (SAEAWDTC site aware, SAERPDTC reported to the sponsor), QORIG "CRF".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import islice

import pycountry
from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldDoesNotExist
from django.db import connection
from django.db.models import Count, F, QuerySet

from adverse_events.models import ActionTaken, AeOutcome, Causality
from core.datasets import Column, Dataset
from core.export_spec import ChildGroup, ExportForm
from core.registry import collected
from eligibility.criteria import CRITERIA
from randomization import selectors as randomization_selectors
from randomization.arms import DRUGS_OF_ARM, Arm, StudyDrug, drug_name
from subjects.models import SubjectStatus
from treatment import selectors as treatment_selectors

from . import records

DEFAULT_STUDY_ID = "TORI-BEV-HCC-3"


# A row as Dataset-JSON text: the one encoding of every row, whoever builds it.
encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def study_id() -> str:
    return getattr(settings, "EDC_STUDY_ID", "") or DEFAULT_STUDY_ID


def usubjid(subject_identifier: str | None) -> str | None:
    return f"{study_id()}-{subject_identifier}" if subject_identifier else None


# --- values --------------------------------------------------------------------------------------


def yn(value) -> str | None:
    return None if value is None else ("Y" if value else "N")


def iso_date(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        value = value.astimezone(UTC).date()
    return value.isoformat()


def dtc(value: datetime | None) -> str | None:
    """An SDTM --DTC date-time: ISO 8601 in UTC, to the second, without an offset."""
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="seconds")


def country_code(country: str) -> str:
    """ISO 3166-1 alpha-3 for a site's country ("China" -> "CHN"); the text itself when it is
    no country name or code pycountry knows."""
    try:
        return pycountry.countries.lookup(country.strip()).alpha_3
    except LookupError:
        return country


# --- datasets ------------------------------------------------------------------------------------


def _batches(iterable: Iterable, size: int) -> Iterator[list]:
    iterator = iter(iterable)
    while batch := list(islice(iterator, size)):
        yield batch


def scoped(form, user):
    """The form's records ``user`` may see; ``user`` None is the operator at the server's shell
    (the ``export_datasets`` command without ``--user``): every site."""
    return form.queryset() if user is None else records.records(form, user)


def _group(form, name: str):
    return next(group for group in form.children if group.name == name)


# --- reading the records -------------------------------------------------------------------------
#
# Model instances cost most of an export's time (instances, prefetches, related managers). An item
# whose source is a path of model fields ("subject.site.code") reads the same value with
# ``values_list`` ("subject__site__code"); a form whose wanted items (and child groups) are all
# such paths is read without instances, its child rows one query per batch of records. Any other
# form is read through ``exports.records`` (``row``, ``child_rows``). Both give the same values.

SUBJECT = "__subject_identifier__"  # the subject identifier of a record, beside its items
BATCH = 2000  # rows per fetch from the database


def field_path(model, source) -> str | None:
    """The ``values()`` lookup of an item's source when every step is a model field (a forward
    relation, then a concrete field), else None."""
    if not isinstance(source, str):
        return None
    if source == "pk":
        return "pk"
    parts = source.split(".")
    for number, part in enumerate(parts):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        last = number == len(parts) - 1
        if field.is_relation:
            if last or not (field.many_to_one or field.one_to_one):
                return None
            model = field.related_model
        elif not last or not getattr(field, "concrete", False):
            return None
    return "__".join(parts)


def subject_source(form: ExportForm) -> str | None:
    """The record's subject identifier as an attribute path ("subject.subject_identifier")."""
    if not form.subject_path:
        return None
    if form.subject_path == "pk":
        return "subject_identifier"
    return form.subject_path.replace("__", ".") + ".subject_identifier"


def subject_identifier_of(form: ExportForm, record) -> str | None:
    value = record
    for part in (subject_source(form) or "").split("."):
        value = getattr(value, part, None) if value is not None and part else None
    return value


class _ChildRows:
    """A child group's rows in the order of their records, taken record by record."""

    def __init__(self, rows: Iterator[tuple], names: list[str]):
        self.rows, self.names = rows, names
        self.pending = next(self.rows, None)

    def take(self, parent_pk) -> list[dict]:
        found = []
        while self.pending is not None and self.pending[0] == parent_pk:
            found.append(dict(zip(self.names, self.pending[1:], strict=True)))
            self.pending = next(self.rows, None)
        return found


class Reader:
    """The values of the items ``names`` of ``form`` (and SUBJECT) for each record of a
    queryset, with the rows of its child groups ``children``: ``(values, {group: [row]})``."""

    def __init__(self, form: ExportForm, names: Sequence[str], children: Sequence[str] = ()):
        self.form, self.names = form, tuple(names)
        self.groups: tuple[ChildGroup, ...] = tuple(_group(form, n) for n in children)
        items = {item.name: item for item in form.items}
        self.items = tuple(items[name] for name in self.names)
        model = form.model_class()
        subject = subject_source(form)
        self.keys = (*((SUBJECT,) if subject else ()), *self.names)
        self.paths = [field_path(model, subject)] if subject else []
        self.paths += [field_path(model, item.source) for item in self.items]
        self.child_paths = {g.name: self._child_paths(g) for g in self.groups}
        self.fast = all(self.paths) and all(p is not None for p in self.child_paths.values())

    @staticmethod
    def _child_paths(group: ChildGroup) -> list[str] | None:
        model = group.model_class()
        if model is None or not group.parent_field or not group.related:
            return None
        paths = [field_path(model, item.source) for item in group.items]
        return paths if all(paths) else None

    def __call__(self, queryset: QuerySet) -> Iterator[tuple[dict, dict[str, list[dict]]]]:
        return self._values(queryset) if self.fast else self._instances(queryset)

    def _values(self, queryset):
        # a total order, shared by the records and, through the foreign key, their child rows:
        # each child stream is read alongside the records (a merge), never held in memory
        ordering = [*(queryset.query.order_by or self.form.model_class()._meta.ordering), "pk"]
        if not all(isinstance(term, str) for term in ordering):
            yield from self._instances(queryset)
            return
        parents = queryset.prefetch_related(None).order_by(*ordering)
        children = {g.name: self._child_rows(g, parents, ordering) for g in self.groups}
        for row in parents.values_list("pk", *self.paths).iterator(chunk_size=BATCH):
            values = dict(zip(self.keys, row[1:], strict=True))
            yield values, {name: rows.take(row[0]) for name, rows in children.items()}

    def _child_rows(self, group: ChildGroup, parents: QuerySet, ordering: list[str]):
        model, key = group.model_class(), group.parent_field
        in_parent_order = []
        for term in ordering:
            name = term.lstrip("-")
            path = f"{key}_id" if name == "pk" else f"{key}__{name}"
            in_parent_order.append(("-" if term.startswith("-") else "") + path)
        # then the related manager's order within one record (the model's, less the record)
        own = [o for o in model._meta.ordering or () if o.lstrip("-") not in (key, f"{key}_id")]
        rows = (
            model._default_manager.filter(**{f"{key}__in": parents.order_by().values("pk")})
            .order_by(*in_parent_order, *own, "pk")
            .values_list(f"{key}_id", *self.child_paths[group.name])
        )
        return _ChildRows(rows.iterator(chunk_size=BATCH), [item.name for item in group.items])

    def _instances(self, queryset):
        for record in records.stream(queryset):
            values = {item.name: item.value(record) for item in self.items}
            if SUBJECT in self.keys:
                values[SUBJECT] = subject_identifier_of(self.form, record)
            yield values, {g.name: records.child_rows(g, record) for g in self.groups}


# --- PostgreSQL: the rows as JSON text, built by the database -----------------------------------
#
# Encoding a row in Python costs more than reading it. On PostgreSQL a dataset may instead have the
# database build each row as the very text ``encode(row)`` gives (``json_lines``): to_json() escapes
# strings as Python's json does with ensure_ascii=False, dates are ISO 8601, booleans "Y" / "N",
# constants are encoded here once. The rows come through a server-side cursor BATCH at a time, so
# memory stays flat. The records are the scoped queryset's own SQL (``records.records``): only its
# select list is replaced, never its WHERE; the order is the one the Reader uses (the queryset's,
# then pk). The Python path stays the reference (SQLite, and the tests compare the two).

SQL_NULL = "'null'"


def sql_literal(text: str) -> str:
    """A constant as an SQL string literal (standard strings; "%" doubled for the driver)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def sql_json(value) -> str:
    """A constant value as the SQL literal of its JSON text."""
    return sql_literal(encode(value))


def sql_text(expr: str) -> str:
    return f"COALESCE(to_json({expr})::text, {SQL_NULL})"


def sql_str(expr: str) -> str:
    """``str(value)`` of an integer column, as JSON."""
    return f"COALESCE(to_json(({expr})::text)::text, {SQL_NULL})"


def sql_integer(expr: str) -> str:
    return f"COALESCE(({expr})::text, {SQL_NULL})"


def sql_yn(expr: str) -> str:
    return f"(CASE WHEN {expr} THEN '\"Y\"' WHEN NOT {expr} THEN '\"N\"' ELSE {SQL_NULL} END)"


def sql_date(expr: str) -> str:
    """``iso_date`` of a date column (to_json writes dates as ISO 8601, whatever DateStyle)."""
    return f"COALESCE(to_json({expr})::text, {SQL_NULL})"


def sql_dtc(expr: str) -> str:
    """``dtc`` of a timestamptz column: UTC, to the second (truncated), no offset."""
    return (
        f"COALESCE(to_json(to_char(({expr}) AT TIME ZONE 'UTC', "
        f"'YYYY-MM-DD\"T\"HH24:MI:SS'))::text, {SQL_NULL})"
    )


def sql_case(expr: str, mapping: dict, *, default: str = SQL_NULL) -> str:
    """``mapping[value]`` as JSON text (``default`` for a value it does not map)."""
    whens = " ".join(f"WHEN {sql_literal(str(k))} THEN {sql_json(v)}" for k, v in mapping.items())
    return f"(CASE {expr} {whens} ELSE {default} END)"


def sql_usubjid(expr: str) -> str:
    return (
        f"(CASE WHEN {expr} IS NULL OR {expr} = '' THEN {SQL_NULL} "
        f"ELSE to_json({sql_literal(study_id() + '-')} || {expr})::text END)"
    )


def sql_row(parts: Sequence[str]) -> str:
    """The JSON array of the parts (each the SQL of one value's JSON text, never NULL)."""
    return "'[' || " + " || ',' || ".join(parts) + " || ']'"


def ordering_of(queryset: QuerySet) -> list[str] | None:
    """The Reader's total order of the records (the queryset's, then pk), when every term is a
    path of concrete fields; else None."""
    model = queryset.model
    ordering = [*(queryset.query.order_by or model._meta.ordering), "pk"]
    for term in ordering:
        if not isinstance(term, str) or not field_path(model, term.lstrip("-").replace("__", ".")):
            return None
    return ordering


def aliased_sql(queryset: QuerySet, columns: dict[str, str]) -> tuple[str, list] | None:
    """The SQL of ``queryset`` selecting ``columns`` (alias -> field lookup) unordered; None
    for a queryset that can hold no row."""
    selected = (
        queryset.prefetch_related(None)
        .order_by()
        .values(**{alias: F(path) for alias, path in columns.items()})
    )
    try:
        sql, params = selected.query.sql_with_params()
    except EmptyResultSet:
        return None
    return sql, list(params)


def order_clause(table: str, ordering: Sequence[str], aliases: Sequence[str]) -> str:
    return ", ".join(
        f"{table}.{alias} {'DESC' if term.startswith('-') else 'ASC'}"
        for term, alias in zip(ordering, aliases, strict=True)
    )


def fetched_lines(sql: str | None, params: list) -> Iterator[str]:
    """The one text column of ``sql``'s rows, BATCH rows a block, through a server-side cursor
    (``sql`` None: no row)."""
    if sql is None:
        return
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(BATCH):
            yield "\n".join(line for (line,) in batch)


def database_builds_json() -> bool:
    return connection.vendor == "postgresql"


def _identity_columns() -> tuple[Column, ...]:
    return (
        Column("STUDYID", "Study Identifier", length=len(study_id()), key=1),
        Column("DOMAIN", "Domain Abbreviation", length=2),
        Column("USUBJID", "Unique Subject Identifier", length=len(study_id()) + 21, key=2),
    )


# --- the subject's path: the dates each status was reached ------------------------------------

RANDOMIZED = SubjectStatus.RANDOMIZED.value
HISTORY_BATCH = 500  # subjects per history query


def statuses_reached(form, subject_ids, statuses) -> dict[int, dict[str, date | None]]:
    """subject id -> {status: the status date last recorded with it}, from the subjects'
    history: a later status does not hide an earlier one."""
    reached: dict[int, dict[str, date | None]] = {}
    rows = (
        form.model_class()
        .history.filter(id__in=subject_ids, status__in=statuses)
        .order_by("history_date", "history_id")
        .values_list("id", "status", "status_date")
    )
    for subject_id, status, status_date in rows:
        reached.setdefault(subject_id, {})[status] = status_date
    return reached


def randomization_date(subject) -> date | None:
    """The randomization date (``randomization.selectors``: the site's date of the
    allocation); None without an allocation. No query with the allocation and the site
    selected with the subject."""
    allocation = getattr(subject, "allocation", None)
    if allocation is None:
        return None
    return randomization_selectors.randomization_date_of(allocation)


def _subject_queryset(user):
    form = records.form_named("subjects")
    return form, scoped(form, user).select_related("allocation", "site")


def _subjects_with_history(user, statuses):
    """(subject, {status: date}) of the subjects ``user`` sees, in batches of history."""
    form, queryset = _subject_queryset(user)
    for batch in _batches(records.stream(queryset), HISTORY_BATCH):
        reached = statuses_reached(form, [s.pk for s in batch], statuses)
        for subject in batch:
            yield form, subject, reached.get(subject.pk, {})


# --- DM ------------------------------------------------------------------------------------------

SCREEN_FAILURE_ARM = ("SCRNFAIL", "Screen Failure")
NOT_ASSIGNED_ARM = ("NOTASSGN", "Not Assigned")
NOT_TREATED_ARM = ("NOTTRT", "Not Treated")
UNPLANNED_ARM = ("UNPLAN", "Unplanned Treatment")


def arm_of(status: str, allocation) -> tuple[str, str]:
    if allocation is not None:
        return allocation.arm, Arm(allocation.arm).label
    if status == SubjectStatus.SCREEN_FAILED:
        return SCREEN_FAILURE_ARM
    return NOT_ASSIGNED_ARM


def actual_arm_of(planned: tuple[str, str], allocation, exposed) -> tuple[str, str]:
    """ACTARMCD/ACTARM: ``planned`` (ARMCD/ARM) for a subject not randomized; else from the
    study drugs taken (``exposed``: a ``treatment.selectors.ExposureSpan`` or None)."""
    if allocation is None:
        return planned
    if exposed is None:
        return NOT_TREATED_ARM
    if exposed.drugs <= set(DRUGS_OF_ARM[allocation.arm]):
        return planned
    return UNPLANNED_ARM


class Demographics(Dataset):
    name = "DM"
    label = "Demographics"
    columns = (
        *_identity_columns(),
        Column("SUBJID", "Subject Identifier for the Study", length=20),
        Column("RFSTDTC", "Subject Reference Start Date/Time", "date"),
        Column("RFXSTDTC", "Date/Time of First Study Treatment", "date"),
        Column("RFXENDTC", "Date/Time of Last Study Treatment", "date"),
        Column("RFICDTC", "Date/Time of Informed Consent", "date"),
        Column("DTHDTC", "Date/Time of Death", "date"),
        Column("DTHFL", "Subject Death Flag", length=1),
        Column("SITEID", "Study Site Identifier", length=10),
        Column("AGE", "Age", "integer"),
        Column("AGEU", "Age Units", length=5),
        Column("SEX", "Sex", length=1),
        Column("ARMCD", "Planned Arm Code", length=8),
        Column("ARM", "Description of Planned Arm", length=40),
        Column("ACTARMCD", "Actual Arm Code", length=8),
        Column("ACTARM", "Description of Actual Arm", length=40),
        Column("COUNTRY", "Country", length=3),
    )

    def count(self, user) -> int:
        return _subject_queryset(user)[1].count()

    def rows(self, user) -> Iterator[list]:
        """Batch by batch of subjects: their records, then their exposure (one query each)."""
        countries: dict[str, str] = {}
        form, queryset = _subject_queryset(user)
        for batch in _batches(records.stream(queryset), HISTORY_BATCH):
            spans = treatment_selectors.exposure_spans([s.pk for s in batch])
            for subject in batch:
                values = records.row(form, subject, identifiers=False)
                country = subject.site.country
                if country not in countries:
                    countries[country] = country_code(country)
                allocation = getattr(subject, "allocation", None)
                planned = arm_of(values["status"], allocation)
                exposed = spans.get(subject.pk)
                yield self._ordered(
                    self.row(
                        values,
                        planned,
                        randomization_date(subject),
                        countries[country],
                        actual=actual_arm_of(planned, allocation, exposed),
                        exposed=exposed,
                    )
                )

    @staticmethod
    def row(
        values: dict,
        armcd_arm: tuple[str, str],
        randomized,
        country: str,
        *,
        actual: tuple[str, str],
        exposed=None,
    ) -> dict:
        armcd, arm = armcd_arm
        died = values["status"] == SubjectStatus.DIED
        return {
            "STUDYID": study_id(),
            "DOMAIN": "DM",
            "USUBJID": usubjid(values["subject_identifier"]),
            "SUBJID": values["subject_identifier"],
            "RFSTDTC": iso_date(randomized),
            "RFXSTDTC": iso_date(exposed.first) if exposed else None,
            "RFXENDTC": iso_date(exposed.last) if exposed else None,
            "RFICDTC": iso_date(values["consent_date"]),
            "DTHDTC": iso_date(values["status_date"]) if died else None,
            "DTHFL": "Y" if died else None,
            "SITEID": values["site"],
            "AGE": values["age"],
            "AGEU": "YEARS" if values["age"] is not None else None,
            "SEX": values["sex"],
            "ARMCD": armcd,
            "ARM": arm,
            "ACTARMCD": actual[0],
            "ACTARM": actual[1],
            "COUNTRY": country,
        }


# --- DS ------------------------------------------------------------------------------------------

CONSENT = "consent"
# event -> (DSTERM, DSDECOD, DSCAT, DSSCAT), in the order of the trial path.
DS_EVENTS: dict[str, tuple[str, str, str, str | None]] = {
    CONSENT: (
        "INFORMED CONSENT OBTAINED",
        "INFORMED CONSENT OBTAINED",
        "PROTOCOL MILESTONE",
        None,
    ),
    SubjectStatus.SCREEN_FAILED: (
        "SCREEN FAILURE",
        "SCREEN FAILURE",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
    RANDOMIZED: ("RANDOMIZED", "RANDOMIZED", "PROTOCOL MILESTONE", None),
    # No reason is collected for the end of treatment: no NCOMPLT term fits better than OTHER.
    SubjectStatus.TREATMENT_ENDED: (
        "END OF TREATMENT",
        "OTHER",
        "DISPOSITION EVENT",
        "STUDY TREATMENT",
    ),
    SubjectStatus.WITHDRAWN: (
        "WITHDRAWN",
        "WITHDRAWAL BY SUBJECT",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
    SubjectStatus.DIED: ("DEATH", "DEATH", "DISPOSITION EVENT", "STUDY PARTICIPATION"),
    SubjectStatus.COMPLETED: (
        "COMPLETED",
        "COMPLETED",
        "DISPOSITION EVENT",
        "STUDY PARTICIPATION",
    ),
}
DISPOSITION_STATUSES = tuple(e for e in DS_EVENTS if e not in (CONSENT, RANDOMIZED))


class Disposition(Dataset):
    name = "DS"
    label = "Disposition"
    columns = (
        *_identity_columns(),
        Column("DSSEQ", "Sequence Number", "integer", key=3),
        Column("DSTERM", "Reported Term for the Disposition Event", length=40),
        Column("DSDECOD", "Standardized Disposition Term", length=40),
        Column("DSCAT", "Category for Disposition Event", length=20),
        Column("DSSCAT", "Subcategory for Disposition Event", length=20),
        Column("DSSTDTC", "Start Date/Time of Disposition Event", "date"),
    )

    def rows(self, user) -> Iterator[list]:
        for _, subject, reached in _subjects_with_history(user, DISPOSITION_STATUSES):
            yield from (self._ordered(row) for row in self.events(subject, reached))

    def events(self, subject, reached: dict) -> list[dict]:
        dates = {s: d for s, d in reached.items() if s in DISPOSITION_STATUSES}
        if subject.status in DISPOSITION_STATUSES:  # the record itself has the last word
            dates[subject.status] = subject.status_date
        if subject.consent_date:
            dates[CONSENT] = subject.consent_date
        if getattr(subject, "allocation", None) is not None:
            dates[RANDOMIZED] = randomization_date(subject)
        order = list(DS_EVENTS)
        found = sorted(dates, key=lambda e: (dates[e] or date.max, order.index(e)))
        rows = []
        for seq, event in enumerate(found, start=1):
            term, decod, cat, scat = DS_EVENTS[event]
            rows.append(
                {
                    "STUDYID": study_id(),
                    "DOMAIN": "DS",
                    "USUBJID": usubjid(subject.subject_identifier),
                    "DSSEQ": seq,
                    "DSTERM": term,
                    "DSDECOD": decod,
                    "DSCAT": cat,
                    "DSSCAT": scat,
                    "DSSTDTC": iso_date(dates[event]),
                }
            )
        return rows


# --- IE ------------------------------------------------------------------------------------------

CRITERION_TEXT = {c.code: c.text for c in CRITERIA}


class InclusionExclusion(Dataset):
    name = "IE"
    label = "Inclusion/Exclusion Criteria Not Met"
    columns = (
        *_identity_columns(),
        Column("IESEQ", "Sequence Number", "integer"),
        Column("IETESTCD", "Inclusion/Exclusion Criterion Short Name", length=8, key=3),
        Column("IETEST", "Inclusion/Exclusion Criterion", length=200),
        Column("IECAT", "Inclusion/Exclusion Category", length=9),
        Column("IEORRES", "I/E Criterion Original Result", length=1),
        Column("IESTRESC", "I/E Criterion Result in Std Format", length=1),
        Column("IEDTC", "Date/Time of Collection", "date"),
    )

    def rows(self, user) -> Iterator[list]:
        form = records.form_named("eligibility")
        criteria = _group(form, "criteria")
        for assessment in records.stream(scoped(form, user)):
            values = records.row(form, assessment, identifiers=False)
            failed = [c for c in records.child_rows(criteria, assessment) if c["outcome"] == "fail"]
            collected = iso_date(values["signed_at"] or values["updated"])
            for seq, criterion in enumerate(failed, start=1):
                yield self._ordered(self.row(values["subject"], seq, criterion, collected))

    @staticmethod
    def row(subject_identifier: str, seq: int, criterion: dict, collected: str | None) -> dict:
        inclusion = criterion["kind"] == "inclusion"
        # SDTM: an inclusion criterion not met is N; an exclusion criterion met is Y.
        result = "N" if inclusion else "Y"
        return {
            "STUDYID": study_id(),
            "DOMAIN": "IE",
            "USUBJID": usubjid(subject_identifier),
            "IESEQ": seq,
            "IETESTCD": criterion["code"],
            "IETEST": CRITERION_TEXT.get(criterion["code"], "")[:200],
            "IECAT": "INCLUSION" if inclusion else "EXCLUSION",
            "IEORRES": result,
            "IESTRESC": result,
            "IEDTC": collected,
        }


# --- AE and SUPPAE -------------------------------------------------------------------------------

AEOUT = {
    AeOutcome.RECOVERED: "RECOVERED/RESOLVED",
    AeOutcome.RECOVERING: "RECOVERING/RESOLVING",
    AeOutcome.NOT_RECOVERED: "NOT RECOVERED/NOT RESOLVED",
    AeOutcome.RECOVERED_WITH_SEQUELAE: "RECOVERED/RESOLVED WITH SEQUELAE",
    AeOutcome.FATAL: "FATAL",
    AeOutcome.UNKNOWN: "UNKNOWN",
}
# Weakest first: the worst causality over the drugs is the one latest in this order.
AEREL = {
    Causality.NOT_RELATED: "NOT RELATED",
    Causality.UNLIKELY: "UNLIKELY RELATED",
    Causality.POSSIBLE: "POSSIBLY RELATED",
    Causality.PROBABLE: "PROBABLY RELATED",
    Causality.DEFINITE: "DEFINITELY RELATED",
}
AEACN = {
    ActionTaken.DOSE_NOT_CHANGED: "DOSE NOT CHANGED",
    ActionTaken.DOSE_REDUCED: "DOSE REDUCED",
    ActionTaken.DRUG_INTERRUPTED: "DRUG INTERRUPTED",
    ActionTaken.DRUG_WITHDRAWN: "DRUG WITHDRAWN",
    ActionTaken.NOT_APPLICABLE: "NOT APPLICABLE",
}
MULTIPLE = "MULTIPLE"
# SDTM serious-criteria flag -> the AE item it comes from.
SERIOUS_FLAGS = {
    "AESCONG": ("sc_congenital_anomaly", "Congenital Anomaly or Birth Defect"),
    "AESDISAB": ("sc_disability", "Persist or Signif Disability/Incapacity"),
    "AESDTH": ("sc_death", "Results in Death"),
    "AESHOSP": ("sc_hospitalization", "Requires or Prolongs Hospitalization"),
    "AESLIFE": ("sc_life_threatening", "Is Life Threatening"),
    "AESMIE": ("sc_other_important", "Other Medically Important Serious Event"),
}
_REL_ORDER = list(AEREL)


def worst_causality(causality: list[dict]) -> str | None:
    if not causality:
        return None
    return AEREL[max((c["causality"] for c in causality), key=_REL_ORDER.index)]


def action_taken(causality: list[dict]) -> str | None:
    actions = {c["action_taken"] for c in causality}
    if not actions:
        return None
    return AEACN[actions.pop()] if len(actions) == 1 else MULTIPLE


def drug_number(drug: str) -> int:
    return list(StudyDrug).index(StudyDrug(drug)) + 1


# The AE items the two domains read (never an identifier), and the causality per drug.
AE_ITEMS = (
    "ae_number",
    "term",
    "verbatim_term",
    "soc",
    "grade",
    "onset_date",
    "end_date",
    "serious",
    *(item for item, _ in SERIOUS_FLAGS.values()),
    "site_aware_at",
    "sae_reported_at",
    "outcome",
    "immune_related",
    "treatment_given",
)


class _AdverseEventRows(Dataset):
    def _source(self, user):
        form = records.form_named("adverse-events")
        return form, _group(form, "causality"), scoped(form, user)

    def _events(self, user) -> Iterator[tuple[dict, list[dict]]]:
        form, causality, queryset = self._source(user)
        for values, children in Reader(form, AE_ITEMS, children=[causality.name])(queryset):
            yield values, children[causality.name]

    # On PostgreSQL: each AE ("a": its AE_ITEMS as x_<item>, the subject as x_subject) with its
    # causality rows aggregated ("g", a LEFT JOIN on a grouped subquery), one text per AE.

    def json_lines(self, user) -> Iterator[str] | None:
        if not database_builds_json():
            return None
        built = self.sql(*self._source(user))
        return None if built is None else fetched_lines(*built)

    def sql(self, form, group, queryset) -> tuple[str | None, list] | None:
        """The SQL of the rows as JSON text and its parameters (None: the rows cannot be read
        so; the SQL None: no row)."""
        model, child, key = form.model_class(), group.model_class(), group.parent_field
        items = {item.name: item for item in form.items}
        columns = {"x_pk": "pk", "x_subject": field_path(model, subject_source(form))}
        columns |= {f"x_{name}": field_path(model, items[name].source) for name in AE_ITEMS}
        child_paths = Reader._child_paths(group)
        ordering = ordering_of(queryset)
        own = [o for o in child._meta.ordering or () if o.lstrip("-") not in (key, f"{key}_id")]
        child_ordering = ordering_of(child._default_manager.order_by(*own))
        if None in (ordering, child_paths, child_ordering) or not all(columns.values()):
            return None
        columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(ordering)}
        child_columns = {"x_parent": f"{key}_id", "x_pk": "pk"}
        child_columns |= {
            f"x_{item.name}": path for item, path in zip(group.items, child_paths, strict=True)
        }
        child_columns |= {f"k{n}": term.lstrip("-") for n, term in enumerate(child_ordering)}
        parents = queryset.prefetch_related(None)
        children = child._default_manager.filter(**{f"{key}__in": parents.order_by().values("pk")})
        records_sql = aliased_sql(parents, columns)
        children_sql = aliased_sql(children, child_columns)
        if records_sql is None or children_sql is None:
            return None, []
        child_keys = [f"k{n}" for n in range(len(child_ordering))]
        order = order_clause("a", ordering, [f"k{n}" for n in range(len(ordering))])
        sql = (
            f"SELECT {self.line_sql()} FROM ({records_sql[0]}) a LEFT JOIN "
            f"(SELECT c.x_parent AS parent, {self.aggregates_sql(child_ordering, child_keys)} "
            f"FROM ({children_sql[0]}) c GROUP BY c.x_parent) g ON g.parent = a.x_pk "
            f"ORDER BY {order}"
        )
        return sql, records_sql[1] + children_sql[1]

    def line_sql(self) -> str:
        raise NotImplementedError

    def aggregates_sql(self, ordering: list[str], keys: list[str]) -> str:
        raise NotImplementedError


class AdverseEvents(_AdverseEventRows):
    name = "AE"
    label = "Adverse Events"
    columns = (
        *_identity_columns(),
        Column("AESEQ", "Sequence Number", "integer", key=3),
        Column("AESPID", "Sponsor-Defined Identifier", length=8),
        Column("AETERM", "Reported Term for the Adverse Event", length=200),
        Column("AEDECOD", "Dictionary-Derived Term", length=200),
        Column("AEBODSYS", "Body System or Organ Class", length=200),
        Column("AESER", "Serious Event", length=1),
        Column("AEACN", "Action Taken with Study Treatment", length=16),
        Column("AEREL", "Causality", length=18),
        Column("AEOUT", "Outcome of Adverse Event", length=32),
        *(Column(flag, label, length=1) for flag, (_, label) in SERIOUS_FLAGS.items()),
        Column("AECONTRT", "Concomitant or Additional Trtmnt Given", length=1),
        Column("AETOXGR", "Standard Toxicity Grade", length=1),
        Column("AESTDTC", "Start Date/Time of Adverse Event", "date"),
        Column("AEENDTC", "End Date/Time of Adverse Event", "date"),
    )

    def count(self, user) -> int:
        return self._source(user)[2].count()

    def rows(self, user) -> Iterator[list]:
        for values, causality in self._events(user):
            yield self._ordered(self.row(values, causality))

    def aggregates_sql(self, ordering, keys) -> str:
        ranks = " ".join(f"WHEN {sql_literal(c)} THEN {n}" for n, c in enumerate(_REL_ORDER))
        return (
            f"max(CASE c.x_causality {ranks} END) AS rel, "
            "count(DISTINCT c.x_action_taken) AS actions, min(c.x_action_taken) AS action"
        )

    def line_sql(self) -> str:
        """``row()`` in SQL, from "a" (the AE) and "g" (its causality aggregated)."""
        worst = sql_case("g.rel", {n: AEREL[c] for n, c in enumerate(_REL_ORDER)})
        actions = (
            f"(CASE WHEN g.actions > 1 THEN {sql_json(MULTIPLE)} "
            f"WHEN g.actions = 1 THEN {sql_case('g.action', AEACN)} ELSE {SQL_NULL} END)"
        )
        parts = {
            "STUDYID": sql_json(study_id()),
            "DOMAIN": sql_json("AE"),
            "USUBJID": sql_usubjid("a.x_subject"),
            "AESEQ": sql_integer("a.x_ae_number"),
            "AESPID": sql_str("a.x_ae_number"),
            "AETERM": sql_text("COALESCE(NULLIF(a.x_verbatim_term, ''), a.x_term)"),
            "AEDECOD": sql_text("a.x_term"),
            "AEBODSYS": sql_text("a.x_soc"),
            "AESER": sql_yn("a.x_serious"),
            "AEACN": actions,
            "AEREL": worst,
            "AEOUT": sql_case("a.x_outcome", AEOUT),
            "AECONTRT": sql_yn("a.x_treatment_given"),
            "AETOXGR": sql_str("a.x_grade"),
            "AESTDTC": sql_date("a.x_onset_date"),
            "AEENDTC": sql_date("a.x_end_date"),
        }
        for flag, (item, _) in SERIOUS_FLAGS.items():
            parts[flag] = sql_yn(f"a.x_{item}")
        return sql_row([parts.get(column.name, SQL_NULL) for column in self.columns])

    @staticmethod
    def row(values: dict, causality: list[dict]) -> dict:
        row = {
            "STUDYID": study_id(),
            "DOMAIN": "AE",
            "USUBJID": usubjid(values[SUBJECT]),
            "AESEQ": values["ae_number"],
            "AESPID": str(values["ae_number"]),
            "AETERM": values["verbatim_term"] or values["term"],
            "AEDECOD": values["term"],
            "AEBODSYS": values["soc"],
            "AESER": yn(values["serious"]),
            "AEACN": action_taken(causality),
            "AEREL": worst_causality(causality),
            "AEOUT": AEOUT[values["outcome"]],
            "AECONTRT": yn(values["treatment_given"]),
            "AETOXGR": str(values["grade"]),
            "AESTDTC": iso_date(values["onset_date"]),
            "AEENDTC": iso_date(values["end_date"]),
        }
        for flag, (item, _) in SERIOUS_FLAGS.items():
            row[flag] = yn(values[item])
        return row


class SuppAdverseEvents(_AdverseEventRows):
    """What SDTM AE has no variable for: per-drug causality and action, irAE, SAE clock."""

    name = "SUPPAE"
    label = "Supplemental Qualifiers for AE"
    columns = (
        Column("STUDYID", "Study Identifier", length=len(study_id()), key=1),
        Column("RDOMAIN", "Related Domain Abbreviation", length=2, key=2),
        Column("USUBJID", "Unique Subject Identifier", length=len(study_id()) + 21, key=3),
        Column("IDVAR", "Identifying Variable", length=8, key=4),
        Column("IDVARVAL", "Identifying Variable Value", length=8, key=5),
        Column("QNAM", "Qualifier Variable Name", length=8, key=6),
        Column("QLABEL", "Qualifier Variable Label", length=40),
        Column("QVAL", "Data Value", length=200),
        Column("QORIG", "Origin", length=8),
        Column("QEVAL", "Evaluator", length=12),
    )

    def count(self, user) -> int:
        _, causality, queryset = self._source(user)
        totals = queryset.order_by().aggregate(
            events=Count("pk"), aware=Count("site_aware_at"), reported=Count("sae_reported_at")
        )
        per_drug = causality.model_class()._default_manager.filter(
            **{f"{causality.parent_field}__in": queryset.order_by().values("pk")}
        )
        # one irAE row per event, the SAE times when given, two rows (AERELn, AEACNn) per drug
        return totals["events"] + totals["aware"] + totals["reported"] + 2 * per_drug.count()

    def rows(self, user) -> Iterator[list]:
        for values, causality in self._events(user):
            yield from (self._ordered(row) for row in self.qualifiers(values, causality))

    # In SQL: an AE's rows share their first five values (the prefix); each qualifier is the
    # rest of a row (a tail). "g.pairs" holds the tails of the causality rows (AERELn, AEACNn per
    # drug, in the child order) joined by a line feed, which JSON text never holds raw: the
    # prefix goes in front of each.

    def _tail(self, qnam: str, qlabel: str, qval: str, qeval: str = SQL_NULL) -> str:
        parts = {"QNAM": qnam, "QLABEL": qlabel, "QVAL": qval, "QORIG": sql_json("CRF")}
        parts["QEVAL"] = qeval
        return " || ',' || ".join(parts[c.name] for c in self.columns[5:]) + " || ']'"

    def aggregates_sql(self, ordering, keys) -> str:
        drugs = [(drug.value, drug_number(drug), drug_name(drug)) for drug in StudyDrug]
        causality = self._tail(
            sql_case("c.x_drug", {d: f"AEREL{n}" for d, n, _ in drugs}, default="NULL"),
            sql_case(
                "c.x_drug", {d: f"Causality to {name}" for d, _, name in drugs}, default="NULL"
            ),
            sql_case("c.x_causality", AEREL, default="NULL"),
            sql_json("INVESTIGATOR"),
        )
        action = self._tail(
            sql_case("c.x_drug", {d: f"AEACN{n}" for d, n, _ in drugs}, default="NULL"),
            sql_case(
                "c.x_drug", {d: f"Action Taken with {name}" for d, _, name in drugs}, default="NULL"
            ),
            sql_case("c.x_action_taken", AEACN, default="NULL"),
        )
        return (
            f"string_agg({causality} || chr(10) || {action}, chr(10) "
            f"ORDER BY {order_clause('c', ordering, keys)}) AS pairs"
        )

    def line_sql(self) -> str:
        """``qualifiers()`` in SQL: the AE's rows joined by line feeds."""
        values = {
            "STUDYID": sql_json(study_id()),
            "RDOMAIN": sql_json("AE"),
            "USUBJID": sql_usubjid("a.x_subject"),
            "IDVAR": sql_json("AESEQ"),
            "IDVARVAL": sql_str("a.x_ae_number"),
        }
        prefix = sql_row([values[c.name] for c in self.columns[:5]])[: -len("']'")] + "','"
        irae = self._tail(
            sql_json("AEIRAE"),
            sql_json("Immune-Related Adverse Event"),
            sql_yn("a.x_immune_related"),
        )
        times = [
            ("a.x_site_aware_at", "SAEAWDTC", "Date/Time Site Aware of SAE"),
            ("a.x_sae_reported_at", "SAERPDTC", "Date/Time SAE Reported to Sponsor"),
        ]
        body = ["COALESCE(g.pairs || chr(10), '')", irae]
        for expr, qnam, qlabel in times:
            tail = self._tail(sql_json(qnam), sql_json(qlabel), sql_dtc(expr))
            body.append(f"(CASE WHEN {expr} IS NOT NULL THEN chr(10) || {tail} ELSE '' END)")
        return f"{prefix} || replace({' || '.join(body)}, chr(10), chr(10) || {prefix})"

    @staticmethod
    def qualifiers(values: dict, causality: list[dict]) -> list[dict]:
        found = []
        for c in causality:
            n, name = drug_number(c["drug"]), drug_name(c["drug"])
            found.append(
                (f"AEREL{n}", f"Causality to {name}", AEREL[c["causality"]], "INVESTIGATOR")
            )
            found.append((f"AEACN{n}", f"Action Taken with {name}", AEACN[c["action_taken"]], None))
        found.append(("AEIRAE", "Immune-Related Adverse Event", yn(values["immune_related"]), None))
        if values["site_aware_at"]:
            found.append(
                ("SAEAWDTC", "Date/Time Site Aware of SAE", dtc(values["site_aware_at"]), None)
            )
        if values["sae_reported_at"]:
            found.append(
                (
                    "SAERPDTC",
                    "Date/Time SAE Reported to Sponsor",
                    dtc(values["sae_reported_at"]),
                    None,
                )
            )
        base = {
            "STUDYID": study_id(),
            "RDOMAIN": "AE",
            "USUBJID": usubjid(values[SUBJECT]),
            "IDVAR": "AESEQ",
            "IDVARVAL": str(values["ae_number"]),
            "QORIG": "CRF",
        }
        return [
            {**base, "QNAM": qnam, "QLABEL": qlabel, "QVAL": qval, "QEVAL": qeval}
            for qnam, qlabel, qval, qeval in found
        ]


def sdtm_datasets() -> list[Dataset]:
    """These domains, then each CRF app's ``sdtm.DATASETS`` (EX, TU, ... ADTTE) in layer order."""
    return [
        Demographics(),
        Disposition(),
        InclusionExclusion(),
        AdverseEvents(),
        SuppAdverseEvents(),
        *collected("sdtm", "DATASETS"),
    ]
