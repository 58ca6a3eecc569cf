"""The read API of every exported form, generated from the registry: ``/api/v1/<form name>/``.

``form_routes()`` makes one read-only, scoped view set per ``ExportForm`` whose serializer fields
are the form's items and child groups, so nothing here names a form and a CRF added later has
its API. Scope and identifiers come from ``exports.records``; filters, ``updated_since`` and
``ordering`` are read strictly (``exports.params``); pages are keyset pages
(``exports.pagination``); ``?format=csv`` streams the whole filtered list (``exports.flatten``,
or ``exports.copy_csv`` on PostgreSQL: the same bytes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache, reduce
from operator import and_

from django.db.models import Q
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from core import access
from core.api import NO_NUL, CanReadExports
from core.export_spec import ChildGroup, ExportForm, Item, ItemType

from . import audit_trail, copy_csv, extras, flatten, params, records
from .columns import Column, column_of
from .formatting import csv_text, json_value, plain, utc_iso
from .pagination import Key, KeysetPagination

FILTERABLE = (ItemType.TEXT, ItemType.INTEGER, ItemType.BOOLEAN)
PAGING = ("cursor", "page_size", "format")


# --- CSV -----------------------------------------------------------------------------------------


class CSVRenderer(BaseRenderer):
    """``?format=csv`` / ``Accept: text/csv``. The list views stream their CSV themselves
    (``csv_response``); this renders what else would come this way (a list of flat rows)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        rows = data if isinstance(data, list) else [data]
        header = list(rows[0]) if rows and isinstance(rows[0], dict) else ["value"]
        lines = flatten.csv_lines(
            header,
            ([plain_cell(r.get(h)) for h in header] if isinstance(r, dict) else [r] for r in rows),
        )
        return "".join(lines).encode(self.charset)


def plain_cell(value) -> str:
    return csv_text(plain(value))


def csv_response(name: str, lines) -> StreamingHttpResponse:
    """``lines`` (a generator of text or bytes) streamed as ``<name>.csv``."""
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


def wants_csv(request) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", "") == "csv"


class ExportViewSet(viewsets.GenericViewSet):
    """Read-only, for the study team within its scope, JSON or CSV; an error is always JSON."""

    permission_classes = [CanReadExports]
    pagination_class = KeysetPagination
    renderer_classes = [JSONRenderer, BrowsableAPIRenderer, CSVRenderer]
    filter_backends: list = []

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and wants_csv(request):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


# --- what each form offers -----------------------------------------------------------------------


@dataclass
class FormApi:
    """What the API offers of one form: filters, orderings, the detail key."""

    form: ExportForm
    columns: dict[str, tuple[Item, Column]] = field(default_factory=dict)

    def __post_init__(self):
        model = self.form.model_class()
        for item in self.form.items:
            column = column_of(model, item.source)
            if column is not None and not item.direct_identifier:
                self.columns[item.name] = (item, column)

    @property
    def site_path(self) -> str:
        lookup = access.site_lookup_of(self.form.model_class())
        return "code" if lookup == "pk" else f"{lookup}__code"

    @property
    def filters(self) -> dict[str, tuple[Item, Column]]:
        return {
            name: (item, column)
            for name, (item, column) in self.columns.items()
            if item.type in FILTERABLE
            and name != "site"
            and (item.type != ItemType.TEXT or item.codelist or column.short_text)
        }

    @property
    def parameters(self) -> set[str]:
        return {"site", "updated_since", "ordering", *PAGING, *self.filters}

    @property
    def lookup(self) -> tuple[str, str]:
        """(URL name, ORM path) of the detail route's key."""
        for name, (_, column) in self.columns.items():
            if column.unique:
                return name, column.path
        return "id", "pk"

    def default_keys(self) -> list[Key]:
        model = self.form.model_class()
        keys = []
        for entry in self.form.ordering:
            path = entry.lstrip("-")
            column = column_of(model, path.replace("__", "."))
            keys.append(Key(path, entry.startswith("-"), bool(column and column.nullable)))
        return with_pk(keys)

    def keys(self, ordering: str | None) -> list[Key]:
        if ordering is None:
            return self.default_keys()
        keys = []
        for entry in ordering.split(","):
            name = entry.strip().removeprefix("-")
            if name not in self.columns:
                names = ", ".join(self.columns)
                params.refuse(
                    "ordering",
                    f"ordering {entry.strip()!r} is not a field this list can be ordered by: "
                    f"{names} (a leading - orders descending).",
                )
            _, column = self.columns[name]
            keys.append(Key(column.path, entry.strip().startswith("-"), column.nullable))
        return with_pk(keys)

    def page_order(self, ordering: str | None) -> tuple[list[Key], str]:
        """(keys, name) of a page's order: the name is what its cursors are positions in.

        Without ``ordering`` a page is in the order of the records' keys (``id``), not the
        form's casebook order (site code, subject, number: columns of three tables that no
        index holds together): a page then reads one range of the primary key's index, page 1
        or the thousandth, whatever the study's size. An ``ordering`` given sorts the filtered
        records by it (an index on its first item, e.g. ``updated``, serves a page the same
        way)."""
        keys = [Key("pk")] if ordering is None else self.keys(ordering)
        name = f"{self.form.name}:" + ",".join(("-" if k.descending else "") + k.path for k in keys)
        return keys, name

    def condition(self, query_params) -> Q:
        """The filters of the request (after ``refuse_unknown``)."""
        conditions = []
        sites = query_params.getlist("site")
        if sites:
            conditions.append(Q(**{f"{self.site_path}__in": sites}))
        for name, (item, column) in self.filters.items():
            values = [params.parse_item_value(name, item, v) for v in query_params.getlist(name)]
            if values:
                conditions.append(Q(**{f"{column.path}__in": values}))
        return reduce(and_, conditions, Q())


def with_pk(keys: list[Key]) -> list[Key]:
    if keys and keys[-1].path == "pk":
        return keys
    return [*keys, Key("pk", keys[-1].descending if keys else False)]


@cache
def form_api(name: str) -> FormApi:
    return FormApi(records.form_named(name))


# --- serializers ---------------------------------------------------------------------------------


class _ItemField:
    """A read-only field whose value is an item's (``Item.value``), written as the JSON of
    ``exports.formatting``."""

    def __init__(self, item: Item, **kwargs):
        self.item = item
        help_text = item.label + (f" ({item.unit})" if item.unit else "")
        if item.codelist:
            help_text += ". Values: " + ", ".join(code for code, _ in item.codelist)
        # allow_null: any item may be empty (a blank date, None along a missing relation); the
        # schema says so ("nullable"), as the answers do.
        super().__init__(
            read_only=True, allow_null=True, label=item.label, help_text=help_text, **kwargs
        )

    def get_attribute(self, instance):
        return self.item.value(instance)

    def to_representation(self, value):
        return json_value(self.item.type, value)


FIELD_CLASSES = {
    item_type: type(f"Item{base.__name__}", (_ItemField, base), {})
    for item_type, base in (
        (ItemType.TEXT, serializers.CharField),
        (ItemType.INTEGER, serializers.IntegerField),
        (ItemType.FLOAT, serializers.FloatField),
        (ItemType.DATE, serializers.DateField),
        (ItemType.DATETIME, serializers.DateTimeField),
        (ItemType.BOOLEAN, serializers.BooleanField),
    )
}


def item_field(item: Item) -> serializers.Field:
    return FIELD_CLASSES[item.type](item)


@extend_schema_field(OpenApiTypes.OBJECT)
class ReaderField(serializers.Field):
    def __init__(self, reader: extras.ReaderItem):
        self.reader = reader
        super().__init__(read_only=True, label=reader.name, help_text=reader.label)

    def get_attribute(self, instance):
        request = self.context.get("request")
        return self.reader.value(instance, getattr(request, "user", None))

    def to_representation(self, value):
        return plain(value)


class ChildListField(serializers.ListSerializer):
    def __init__(self, *args, group: ChildGroup, **kwargs):
        self.group = group
        super().__init__(*args, read_only=True, help_text=group.label, **kwargs)

    def get_attribute(self, instance):
        return self.group.records(instance)


def _class_name(form: ExportForm, suffix: str) -> str:
    return "".join(part.title() for part in form.name.replace("_", "-").split("-")) + suffix


@cache
def serializer_for(name: str, identifiers: bool) -> type[serializers.Serializer]:
    form = records.form_named(name)
    fields: dict[str, serializers.Field] = {}
    if not flatten.has_id_item(form):
        fields["id"] = serializers.IntegerField(
            source="pk", read_only=True, help_text="The record's key (as the deletions feed)."
        )
    for item in form.visible_items(identifiers=identifiers):
        fields[item.name] = item_field(item)
    for reader in extras.reader_items(form):
        fields[reader.name] = ReaderField(reader)
    for group in form.children:
        child = type(
            _class_name(form, group.name.title() + "Serializer"),
            (serializers.Serializer,),
            {item.name: item_field(item) for item in group.items},
        )
        fields[group.name] = ChildListField(child=child(), group=group)
    suffix = "Serializer" if identifiers else "PseudonymizedSerializer"
    return type(_class_name(form, suffix), (serializers.Serializer,), fields)


# --- the view sets -------------------------------------------------------------------------------


class FormViewSet(ExportViewSet):
    """The list and detail of one form (subclassed per form by ``viewset_for``)."""

    form_name = ""

    @property
    def api(self) -> FormApi:
        return form_api(self.form_name)

    def get_queryset(self):
        return records.records(self.api.form, self.request.user)

    def get_serializer_class(self):
        user = getattr(self.request, "user", None)
        identifiers = user is None or records.identifiers_for(user)
        return serializer_for(self.form_name, identifiers)

    def list(self, request, *args, **kwargs):
        api = self.api
        query = request.query_params
        params.refuse_unknown(query.keys(), api.parameters)
        params.refuse_empty(query, params.blank_matching(api.filters))
        since = query.get("updated_since")
        since = None if since is None else params.parse_datetime("updated_since", since)
        keys, order = api.page_order(query.get("ordering"))
        condition = api.condition(query)
        queryset = records.records(
            api.form, request.user, since=since, paged=not wants_csv(request)
        ).filter(condition)
        if wants_csv(request):  # the whole list; a page size or cursor given must still be valid
            self.paginator.page_size_of(request)
            self.paginator.cursor_of(request, order)
            # in the form's casebook order (by site and subject) unless an ordering is given
            return self.csv(queryset, api.keys(query.get("ordering")))
        page = self.paginator.paginate_keyset(queryset, request, keys, order)
        data = self.get_serializer(page, many=True).data
        return self.paginator.get_paginated_response(data)

    def csv(self, queryset, keys: list[Key]):
        """The whole list as CSV: from PostgreSQL's COPY when every column is a database column
        (``exports.copy_csv``), else row by row in Python; streamed either way."""
        user = self.request.user
        form, identifiers = self.api.form, records.identifiers_for(user)
        table = flatten.table(form, identifiers=identifiers, user=user)
        ordered = queryset.order_by(*(k.expression(False) for k in keys))
        copy_plan = copy_csv.plan(form, identifiers=identifiers) if copy_csv.usable() else None
        if copy_plan is not None:
            return csv_response(form.name, copy_csv.lines(ordered, table.header, copy_plan))
        rows = (table.row(record) for record in records.stream(ordered))
        return csv_response(form.name, flatten.csv_lines(table.header, rows))

    def retrieve(self, request, *args, **kwargs):
        name, path = self.api.lookup
        value = kwargs[name]
        if path == "pk" and not (value.isascii() and value.isdigit()):  # not "²"
            raise Http404
        queryset = records.records(self.api.form, request.user).filter(**{path: value})
        if wants_csv(request):
            if not queryset.exists():  # like the JSON: a 404, not an empty file
                raise Http404
            return self.csv(queryset, self.api.default_keys())
        record = queryset.first()
        if record is None:
            raise Http404
        return Response(self.get_serializer(record).data)


def _list_parameters(api: FormApi) -> list[OpenApiParameter]:
    found = [
        OpenApiParameter("site", str, description="Site code, e.g. 101 (repeat for several)."),
        OpenApiParameter(
            "updated_since",
            OpenApiTypes.DATETIME,
            pattern=params.DATETIME_PATTERN,
            description="ISO 8601 date-time (UTC, or an offset from -12:00 to +14:00) or date: "
            "exactly the records made or changed since then, a change of a child row (an AE's "
            "causality) counting for its record.",
        ),
        OpenApiParameter(
            "ordering",
            str,
            pattern=params.list_pattern(api.columns, descending=True),
            description="Item names, comma-separated, - for descending: "
            + ", ".join(api.columns)
            + ". Without it, pages list the records by id (each page one range of an index, "
            "at any size) and the CSV is in the form's own order (a subject's form: by site, "
            "subject, then number).",
        ),
        OpenApiParameter("format", str, enum=["json", "csv"], description="csv: the whole list."),
    ]
    blank = params.blank_matching(api.filters)
    for name, (item, _) in api.filters.items():
        exact = "exact, empty for a blank one" if name in blank else "exact"
        found.append(
            OpenApiParameter(
                name,
                FILTER_TYPES.get(item.type, str),
                enum=[code for code, _ in item.codelist] or None,
                # Free text (core.api.NOT_BLANK unless given): a blank one may be empty.
                pattern=NO_NUL if name in blank else None,
                description=f"{item.label} ({exact}; repeat for several).",
            )
        )
    return found


FILTER_TYPES = {
    ItemType.BOOLEAN: bool,
    ItemType.INTEGER: {
        "type": "integer",
        "minimum": -params.INTEGER_BOUND,
        "maximum": params.INTEGER_BOUND,
    },
}


def viewset_for(form: ExportForm) -> type[FormViewSet]:
    api = form_api(form.name)

    @extend_schema(parameters=_list_parameters(api))
    def list_view(self, request, *args, **kwargs):
        return FormViewSet.list(self, request, *args, **kwargs)

    return type(
        _class_name(form, "ViewSet"),
        (FormViewSet,),
        {
            "form_name": form.name,
            "lookup_field": api.lookup[0],
            # No NUL either (edc.nul_bytes refuses one): the schema's pattern says so.
            "lookup_value_regex": r"[^/\x00]+",
            "list": list_view,
            "__doc__": f"{form.label}: read-only, scoped to your sites, JSON or CSV.",
        },
    )


def form_routes() -> list[tuple[str, type, str]]:
    """(prefix, view set, basename) of every exported form."""
    return [(form.name, viewset_for(form), form.name) for form in records.export_forms()]


# --- the audit trail and the deletions feed ------------------------------------------------------


class AuditChangeSerializer(serializers.Serializer):
    field = serializers.CharField(help_text="The model field.")
    old = serializers.JSONField(allow_null=True)
    new = serializers.JSONField(allow_null=True)


class AuditRowSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="app_label.model, e.g. adverse_events.adverseevent.")
    record_id = serializers.IntegerField()
    history_id = serializers.IntegerField(help_text="The history row (the audit record's id).")
    subject = serializers.CharField(allow_null=True)
    site = serializers.CharField(allow_null=True)
    type = serializers.ChoiceField(choices=list(audit_trail.TYPES.values()))
    user = serializers.CharField(allow_null=True)
    at = serializers.DateTimeField(help_text="UTC.")
    reason = serializers.CharField()
    changes = AuditChangeSerializer(many=True)


class DeletionSerializer(serializers.Serializer):
    export = serializers.CharField(help_text='The form ("subjects") or "form/child group".')
    record_id = serializers.IntegerField(help_text="The id the record had in its export.")
    deleted_at = serializers.DateTimeField(help_text="UTC.")
    deleted_by = serializers.CharField()
    reason = serializers.CharField()


def _paged(viewset, request, order: str, fetch):
    """A page through ``fetch(position, size, backwards) -> (rows, keys, more)``."""
    paginator = viewset.paginator
    paginator.request = request
    size = paginator.page_size_of(request)
    cursor = paginator.cursor_of(request, order)
    backwards = bool(cursor and cursor.backwards)
    rows, keys, more = fetch(cursor.position if cursor else None, size, backwards)
    paginator.set_links(
        order,
        first=keys[0] if keys else None,
        last=keys[-1] if keys else None,
        cursor=cursor,
        more=more,
    )
    return paginator.get_paginated_response(rows)


class AuditTrailViewSet(ExportViewSet):
    """Every history row of every audited record of your sites: model, record, subject, site,
    type, user, UTC time, reason and the field-level changes (old -> new)."""

    serializer_class = AuditRowSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("model", str, enum=list(audit_trail.audited_models())),
            OpenApiParameter("subject", str, description="Subject identifier, e.g. 101-0001."),
            OpenApiParameter("site", str, description="Site code, e.g. 101."),
            OpenApiParameter("type", str, enum=list(audit_trail.TYPES.values())),
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                pattern=params.DATETIME_PATTERN,
                description="ISO 8601 date-time (UTC, or an offset from -12:00 to +14:00).",
            ),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ]
    )
    def list(self, request, *args, **kwargs):
        params.refuse_unknown(request.query_params.keys(), {*audit_trail.PARAMETERS, *PAGING})
        params.refuse_empty(request.query_params)
        filters = audit_trail.Filters.read(request.query_params)
        user = request.user
        if wants_csv(request):
            rows = (
                [plain_cell(row[name]) for name in audit_trail.COLUMNS]
                for row in audit_trail.every_row(filters, user)
            )
            return csv_response("audit-trail", flatten.csv_lines(audit_trail.COLUMNS, rows))
        return _paged(
            self,
            request,
            audit_trail.ORDER,
            lambda position, size, backwards: audit_trail.page(
                filters, user, position, size, backwards
            ),
        )


DELETION_COLUMNS = ["export", "record_id", "deleted_at", "deleted_by", "reason"]


def deletion_dict(deletion: records.Deletion) -> dict:
    return {
        "export": deletion.export,
        "record_id": deletion.record_id,
        "deleted_at": utc_iso(deletion.deleted_at),
        "deleted_by": deletion.deleted_by,
        "reason": deletion.reason,
    }


class DeletionsViewSet(ExportViewSet):
    """The exported records deleted since a time (``since``, required), oldest first: what an
    incremental pull removes (``export`` and ``record_id`` name the row by its ``id``)."""

    serializer_class = DeletionSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "since",
                OpenApiTypes.DATETIME,
                required=True,
                pattern=params.DATETIME_PATTERN,
                description="ISO 8601 date-time (UTC, or an offset from -12:00 to +14:00).",
            ),
            OpenApiParameter("format", str, enum=["json", "csv"]),
        ]
    )
    def list(self, request, *args, **kwargs):
        query = request.query_params
        params.refuse_unknown(query.keys(), {"since", *PAGING})
        params.refuse_empty(query)
        if "since" not in query:
            params.refuse(
                "since",
                "Give since, an ISO 8601 date-time in UTC (e.g. 2024-05-01T00:00:00Z): the "
                "records deleted since then.",
            )
        since = params.parse_datetime("since", query["since"])
        if wants_csv(request):
            rows = (
                [plain_cell(deletion_dict(d)[name]) for name in DELETION_COLUMNS]
                for d in records.deletions(request.user, since)
            )
            return csv_response("deletions", flatten.csv_lines(DELETION_COLUMNS, rows))

        def fetch(position, size, backwards):
            chosen, more = records.deletions_page(request.user, since, position, size, backwards)
            keys = [records.deletion_key(d) for d in chosen]
            return [deletion_dict(d) for d in chosen], keys, more

        return _paged(self, request, "deletions", fetch)


def feed_routes() -> list[tuple[str, type, str]]:
    return [
        ("audit-trail", AuditTrailViewSet, "audit-trail"),
        ("deletions", DeletionsViewSet, "deletions"),
    ]
