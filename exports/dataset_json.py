"""CDISC Dataset-JSON v1.1: every dataset as JSON or NDJSON, streamed, for the API and the
``export_datasets`` command.

The datasets are the SDTM-like domains (``exports.sdtm``, and each app's declared ``datasets``),
then one per registry form (named by its code, or by its name where the code is an SDTM
domain's) and one per child group (``<form code>_<GROUP>``): a CRF added later is exported with
no code here. No dataset holds a direct identifier, whoever exports. ``records`` precedes the
rows: one COUNT query where a dataset has one, else the rows are spooled and counted first.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from decimal import Decimal
from importlib import metadata as package_metadata
from tempfile import SpooledTemporaryFile

from django.conf import settings
from django.db import connection
from django.db.models import Max
from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound, ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.api import CanReadExports
from core.errors import DomainError
from core.export_spec import ChildGroup, ExportForm, Item, ItemType

from . import background, records
from .sdtm import (
    SUBJECT,
    Column,
    Dataset,
    Reader,
    encode,
    iso_date,
    scoped,
    sdtm_datasets,
    study_id,
    usubjid,
    yn,
)
from .sdtm.reader import field_path, subject_source
from .sdtm.sqljson import fetched_lines, rows_sql

DATASET_JSON_VERSION = "1.1.0"
SOURCE_SYSTEM = "mini-EDC"
META_DATA_VERSION_OID = "MDV.1"
SPOOL_MEMORY = 4 * 1024 * 1024  # characters kept in memory before a spool moves to disk
CHUNK = 64 * 1024  # characters per streamed chunk


class UnknownDataset(DomainError):
    pass


# --- items as columns ----------------------------------------------------------------------------

_DATA_TYPES = {
    ItemType.TEXT: ("string", None),
    ItemType.INTEGER: ("integer", None),
    ItemType.FLOAT: ("decimal", "decimal"),
    ItemType.DATE: ("date", None),
    ItemType.DATETIME: ("datetime", None),
    ItemType.BOOLEAN: ("string", None),
}


def item_column(item: Item, key: int | None = None) -> Column:
    data_type, target = _DATA_TYPES[item.type]
    length = 1 if item.type == ItemType.BOOLEAN else item.length
    return Column(
        item.name,
        item.label,
        data_type,
        length=length if data_type == "string" else None,
        key=key,
        target=target,
    )


def iso_datetime(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decimal(value) -> str:
    return format(value if isinstance(value, Decimal) else Decimal(str(value)), "f")


_CONVERT = {
    ItemType.TEXT: str,
    ItemType.INTEGER: int,
    ItemType.FLOAT: _decimal,
    ItemType.DATE: iso_date,
    ItemType.DATETIME: iso_datetime,
    ItemType.BOOLEAN: yn,
}


def item_value(item: Item, value):
    return None if value is None else _CONVERT[item.type](value)


# --- one dataset per registry form and per child group -------------------------------------------


def _sdtm_names() -> set[str]:
    return {dataset.name for dataset in sdtm_datasets()}


def form_dataset_name(form: ExportForm) -> str:
    return form.code if form.code not in _sdtm_names() else form.name.replace("-", "_").upper()


def _record_key(form: ExportForm) -> Item | None:
    """The item that tells a subject's records apart (the AE number, a query's id)."""
    wanted = form.domain_key or "id"
    return next((item for item in form.items if item.name == wanted), None)


class _FormRows(Dataset):
    """What a form's dataset and its child groups' datasets share: the leading columns."""

    form: ExportForm

    def _lead_columns(self) -> tuple[Column, ...]:
        lead = [Column("STUDYID", "Study Identifier", length=len(study_id()), key=1)]
        if self.form.subject_path:
            lead.append(
                Column("USUBJID", "Unique Subject Identifier", length=len(study_id()) + 21, key=2)
            )
        return tuple(lead)

    def _lead(self, values: dict) -> list:
        if not self.form.subject_path:
            return [study_id()]
        return [study_id(), usubjid(values[SUBJECT])]

    def _records(self, user):
        return scoped(self.form, user)


class FormDataset(_FormRows):
    def __init__(self, form: ExportForm):
        self.form = form
        self.name = form_dataset_name(form)
        self.label = form.label
        self.items = form.visible_items(identifiers=False)
        key = _record_key(form)
        next_key = len(self._lead_columns()) + 1
        self.columns = (
            *self._lead_columns(),
            *(item_column(i, next_key if i is key else None) for i in self.items),
        )

    def count(self, user) -> int:
        return self._records(user).count()

    def json_lines(self, user) -> Iterator[str] | None:
        """Built by the database where every item is a path of model fields."""
        model = self.form.model_class()
        subject = field_path(model, subject_source(self.form))
        parts = {
            f"x{n}": (i.type.value, field_path(model, i.source)) for n, i in enumerate(self.items)
        }
        if not all(path for _, path in parts.values()) or (self.form.subject_path and not subject):
            return None
        built = rows_sql(self._records(user).prefetch_related(None), parts, subject=subject)
        return None if built is None else fetched_lines(*built)

    def rows(self, user) -> Iterator[list]:
        read = Reader(self.form, [item.name for item in self.items])
        for values, _ in read(self._records(user)):
            yield self._lead(values) + [item_value(i, values[i.name]) for i in self.items]


class ChildDataset(_FormRows):
    def __init__(self, form: ExportForm, group: ChildGroup):
        self.form, self.group = form, group
        self.name = f"{form.code}_{group.name.upper()}"
        self.label = f"{form.label}: {group.label}"
        self.parent_key = _record_key(form)
        lead = list(self._lead_columns())
        if self.parent_key is not None:
            lead.append(item_column(self.parent_key, len(lead) + 1))
        self.columns = (
            *lead,
            *(item_column(i, len(lead) + 1 if i.name == group.key else None) for i in group.items),
        )

    def count(self, user) -> int | None:
        child = self.group.model_class()
        if child is None or not self.group.parent_field:
            return None  # rows computed from the record: counted while spooled
        parents = self._records(user).order_by().values("pk")
        return child._default_manager.filter(**{f"{self.group.parent_field}__in": parents}).count()

    def json_lines(self, user) -> Iterator[str] | None:
        """Built by the database where the group is a model and every item a field path."""
        model, child = self.form.model_class(), self.group.model_class()
        key, group = self.parent_key, self.group
        if child is None or not group.parent_field or not group.related:
            return None
        subject = field_path(model, subject_source(self.form))
        parts = {"x_key": (key.type.value, field_path(model, key.source))} if key else {}
        child_parts = {
            f"x{n}": (i.type.value, field_path(child, i.source)) for n, i in enumerate(group.items)
        }
        paths = [path for _, path in (*parts.values(), *child_parts.values())]
        if not all(paths) or (self.form.subject_path and not subject):
            return None
        parents = self._records(user).prefetch_related(None)
        own = [
            o
            for o in child._meta.ordering or ()
            if o.lstrip("-") not in (group.parent_field, f"{group.parent_field}_id")
        ]
        children = child._default_manager.filter(
            **{f"{group.parent_field}__in": parents.order_by().values("pk")}
        ).order_by(*own, "pk")  # never the model's order: it may name the record
        built = rows_sql(
            parents, parts, subject=subject, child=(children, group.parent_field, child_parts)
        )
        return None if built is None else fetched_lines(*built)

    def rows(self, user) -> Iterator[list]:
        key, items = self.parent_key, self.group.items
        read = Reader(self.form, [key.name] if key else [], children=[self.group.name])
        for values, children in read(self._records(user)):
            lead = self._lead(values)
            if key is not None:
                lead.append(item_value(key, values[key.name]))
            for child in children[self.group.name]:
                yield lead + [item_value(i, child[i.name]) for i in items]


# --- the catalogue -------------------------------------------------------------------------------


def datasets() -> list[Dataset]:
    """SDTM-like domains first, then each registry form and its child groups, in layer order."""
    found: list[Dataset] = sdtm_datasets()
    for form in records.export_forms():
        found.append(FormDataset(form))
        found.extend(ChildDataset(form, group) for group in form.children)
    return found


def dataset_named(code: str) -> Dataset:
    """The dataset called ``code`` (any case; "-" for "_"), or a sentence listing them all."""
    wanted = code.strip().upper().replace("-", "_")
    found = datasets()
    for dataset in found:
        if dataset.name == wanted:
            return dataset
    names = ", ".join(d.name for d in found)
    raise UnknownDataset(f"There is no Dataset-JSON dataset {code!r}. The datasets: {names}.")


# --- the file ------------------------------------------------------------------------------------


def _stamp(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _source_version() -> str:
    try:
        return package_metadata.version("mini-edc")
    except package_metadata.PackageNotFoundError:
        return "0"


def db_last_modified() -> datetime | None:
    """The latest change to any exported record (its history: the audit trail)."""
    latest = None
    for form in records.export_forms():
        models = [form.model_class(), *(g.model_class() for g in form.children)]
        for model in filter(None, models):
            value = model.history.aggregate(latest=Max("history_date"))["latest"]
            if value is not None and (latest is None or value > latest):
                latest = value
    return latest


def dataset_metadata(dataset: Dataset, record_count: int, *, created: datetime) -> dict:
    """The top-level attributes, in the order of the specification (``rows`` comes last)."""
    meta = {
        "datasetJSONCreationDateTime": _stamp(created),
        "datasetJSONVersion": DATASET_JSON_VERSION,
        "fileOID": f"{study_id()}.{dataset.name}.{created.astimezone(UTC):%Y%m%dT%H%M%S%fZ}",
    }
    modified = db_last_modified()
    if modified is not None:
        meta["dbLastModifiedDateTime"] = _stamp(min(modified, created))
    meta.update(
        {
            "originator": getattr(settings, "EDC_ORIGINATOR", SOURCE_SYSTEM),
            "sourceSystem": {"name": SOURCE_SYSTEM, "version": _source_version()},
            "studyOID": study_id(),
            "metaDataVersionOID": META_DATA_VERSION_OID,
            "itemGroupOID": f"IG.{dataset.name}",
            "records": record_count,
            "name": dataset.name,
            "label": dataset.label,
            "columns": [column.metadata(dataset.name) for column in dataset.columns],
        }
    )
    return meta


_encode = encode  # one row: the text the database writes too (sdtm.sqljson)


class Export:
    """One dataset as Dataset-JSON (or NDJSON) text chunks; ``records`` is known once the
    iteration has started."""

    def __init__(self, dataset: Dataset, user, *, ndjson: bool = False):
        self.dataset, self.user, self.ndjson = dataset, user, ndjson
        self.records: int | None = None

    @property
    def filename(self) -> str:
        return f"{self.dataset.name.lower()}.{'ndjson' if self.ndjson else 'json'}"

    @property
    def content_type(self) -> str:
        kind = "application/x-ndjson" if self.ndjson else "application/json"
        return f"{kind}; charset=utf-8"

    def __iter__(self) -> Iterator[str]:
        with ExitStack() as stack:
            # the count and the rows: one state of the data
            stack.enter_context(background.one_snapshot(connection.alias))
            count = self.dataset.count(self.user)
            if count is None:
                spool = stack.enter_context(
                    SpooledTemporaryFile(
                        max_size=SPOOL_MEMORY, mode="w+", encoding="utf-8", newline="\n"
                    )
                )
                count = self._spool(spool)
                lines = (line[:-1] for line in spool)
            else:
                lines = self.dataset.json_lines(self.user)
                if lines is None:
                    lines = (_encode(row) for row in self.dataset.rows(self.user))
            self.records = count
            meta = dataset_metadata(self.dataset, count, created=timezone.now())
            yield from (_ndjson if self.ndjson else _json)(meta, lines)

    def _spool(self, spool) -> int:
        count = 0
        for row in self.dataset.rows(self.user):
            spool.write(_encode(row))
            spool.write("\n")
            count += 1
        spool.seek(0)
        return count


def _buffered(parts: Iterable[str]) -> Iterator[str]:
    buffer, size = [], 0
    for part in parts:
        buffer.append(part)
        size += len(part)
        if size >= CHUNK:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def _json(meta: dict, lines: Iterator[str]) -> Iterator[str]:
    """One object: the metadata, then ``"rows"`` one row per line, as they come. ``lines``:
    blocks of one or more encoded rows joined by "\\n" (never raw in JSON text)."""

    def parts():
        yield _encode(meta)[:-1] + ',"rows":['
        separator = "\n"
        for block in lines:
            yield separator
            yield block.replace("\n", ",\n")
            separator = ",\n"
        yield "\n]}\n"

    return _buffered(parts())


def _ndjson(meta: dict, lines: Iterator[str]) -> Iterator[str]:
    """Line 1: the metadata (no rows); then one JSON array per line."""

    def parts():
        yield _encode(meta) + "\n"
        for line in lines:
            yield line + "\n"

    return _buffered(parts())


# --- the API: /api/v1/exports/dataset-json/<dataset>/ --------------------------------------------


class NdjsonRenderer(JSONRenderer):
    """Chosen by ``?format=ndjson`` or ``Accept: application/x-ndjson`` (errors stay JSON)."""

    media_type = "application/x-ndjson"
    format = "ndjson"


class _FormatNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Http404 as exc:
            raise ParseError(
                "Unknown format: the Dataset-JSON export is format=json or format=ndjson."
            ) from exc


SUFFIXES = {".ndjson": True, ".json": False}


class DatasetJsonView(APIView):
    """A CDISC Dataset-JSON v1.1 dataset, streamed: SDTM-like DM, DS, IE, AE, SUPPAE, and one per
    CRF (ELIG, RAND, DQ ...). ``?format=ndjson`` or a ``.ndjson`` suffix gives NDJSON."""

    permission_classes = [CanReadExports]
    renderer_classes = [JSONRenderer, NdjsonRenderer]
    content_negotiation_class = _FormatNegotiation

    @extend_schema(
        operation_id="dataset_json",
        summary="CDISC Dataset-JSON v1.1 dataset",
        parameters=[
            OpenApiParameter(
                "domain",
                OpenApiTypes.STR,
                OpenApiParameter.PATH,
                description="Dataset name, any case (dm, ds, ie, ae, suppae, elig, ...); "
                "a .ndjson suffix gives NDJSON.",
            ),
            OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "ndjson"]),
        ],
        responses={
            (200, "application/json"): OpenApiResponse(OpenApiTypes.OBJECT),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR),
        },
    )
    def get(self, request, domain: str):
        ndjson = request.accepted_renderer.format == "ndjson"
        for suffix, is_ndjson in SUFFIXES.items():
            if domain.lower().endswith(suffix):
                domain, ndjson = domain[: -len(suffix)], is_ndjson
                break
        try:
            dataset = dataset_named(domain)
        except UnknownDataset as exc:
            raise NotFound(str(exc)) from exc
        export = Export(dataset, request.user, ndjson=ndjson)
        response = StreamingHttpResponse(iter(export), content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
