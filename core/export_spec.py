"""The one description of the exported data: each app declares its CRFs' items here once.

From each ``ExportForm`` (``Item``s and ``ChildGroup``s) the exports app derives the API fields,
the CSV columns, ODM metadata and clinical data and the Dataset-JSON columns, so a new CRF is
exported everywhere with no export code of its own. Direct identifiers are derived from
``core.access.DIRECT_IDENTIFIER_FIELDS``, never declared item by item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from operator import attrgetter

from django.apps import apps
from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Concat
from django.db.models.functions.text import ConcatPair

from .access import DIRECT_IDENTIFIER_FIELDS


class ItemType(StrEnum):
    """ODM 1.3.2 data types (the CSV and Dataset-JSON types map from these)."""

    TEXT = "text"
    INTEGER = "integer"
    FLOAT = "float"
    DATE = "date"
    DATETIME = "datetime"
    BOOLEAN = "boolean"


# A path of attributes ("subject.site.code"), a database expression (read by the database's
# exports, and by Python through ``expression_reader``) or, for what neither can say, a function.
Source = str | Callable[[object], object] | F | models.Expression


def is_expression(source) -> bool:
    return isinstance(source, F | models.Expression)


def _path_value(record, path: str):
    value = record
    for part in path.split("."):
        if value is None:
            return None
        value = getattr(value, part)
    return value


def expression_reader(expression) -> Callable[[object], object]:
    """The value of a database expression on a record read by Python (the API, the CSV): the
    same declaration, the database's meaning. Only what the declarations use: ``F``, ``Value``
    and ``Concat`` (whose NULL parts are empty, as both databases concatenate)."""
    if isinstance(expression, F):
        path = str(expression.name).replace("__", ".")  # type: ignore[attr-defined]
        return lambda record: _path_value(record, path)
    if isinstance(expression, Value):
        return lambda record: expression.value
    if isinstance(expression, Concat | ConcatPair):
        parts = [expression_reader(e) for e in expression.get_source_expressions()]
        return lambda record: "".join(
            "" if (value := read(record)) is None else str(value) for read in parts
        )
    raise TypeError(f"no Python reader of {expression!r}: declare F, Value or Concat")


@dataclass(frozen=True)
class Item:
    name: str
    label: str
    type: ItemType
    source: Source
    codelist: tuple[tuple[str, str], ...] = ()
    unit: str = ""
    length: int | None = None

    @property
    def direct_identifier(self) -> bool:
        """Named as, or read from, a field of ``DIRECT_IDENTIFIER_FIELDS`` ("initials",
        "subject.screening_number"): left out for the sponsor's people, whatever the form."""
        if self.name in DIRECT_IDENTIFIER_FIELDS:
            return True
        return isinstance(self.source, str) and (
            self.source.rsplit(".", 1)[-1] in DIRECT_IDENTIFIER_FIELDS
        )

    def value(self, record):
        """The item's value on ``record`` (None along a missing relation)."""
        if isinstance(self.source, str):
            return _path_value(record, self.source)
        return self.reader(record)

    @cached_property
    def reader(self) -> Callable[[object], object]:
        """``value`` as one function, the path read by ``attrgetter`` (for the exports that
        read an item of every record: the same value, without the per-call dispatch)."""
        source = self.source
        if isinstance(source, F | models.Expression):
            return expression_reader(source)
        if not isinstance(source, str):
            return source
        if "." not in source:
            return attrgetter(source)
        get, value = attrgetter(source), self.value

        def read(record):
            try:
                return get(record)
            except AttributeError:  # None along the path (or a real error: ``value`` tells)
                return value(record)

        return read


@dataclass(frozen=True)
class ChildGroup:
    """Rows of one record: ``related`` (a related manager's name) or ``rows(record)``."""

    name: str
    label: str
    items: tuple[Item, ...]
    related: str = ""
    rows: Callable[[object], Iterable] | None = None
    model: str = ""  # "app_label.Model" of the rows when they are records (their history counts)
    parent_field: str = ""  # the rows' foreign key to the record (for ``updated_since``)
    key: str = ""  # the item that tells the rows apart (CSV columns pivot on its code list)

    def records(self, record) -> list:
        if self.rows is not None:
            return list(self.rows(record))
        return list(getattr(record, self.related).all())

    def model_class(self) -> type[models.Model] | None:
        return apps.get_model(self.model) if self.model else None


@dataclass(frozen=True)
class ExportForm:
    name: str  # URL and file name: "adverse-events"
    label: str
    model: str  # "app_label.Model"
    items: tuple[Item, ...]
    subject_path: str = "subject"  # from the record to its subject ("" for a site)
    repeating: bool = False  # several records per subject (ODM repeating item group)
    children: tuple[ChildGroup, ...] = ()
    select_related: tuple[str, ...] = ()
    prefetch_related: tuple[str, ...] = ()
    ordering: tuple[str, ...] = ("pk",)
    # Records that change what the form exports without being a child group of it:
    # ("app_label.Model", its foreign key to the form's record), e.g. the eligibility's
    # signatures. ``updated_since`` counts their changes as changes of the record.
    changed_with: tuple[tuple[str, str], ...] = ()
    oid: str = ""  # ODM FormOID / ItemGroupOID stem and Dataset-JSON name: "AE"
    domain_key: str = field(default="")  # an item that numbers repeating records (AE number)

    def model_class(self) -> type[models.Model]:
        return apps.get_model(self.model)

    @property
    def code(self) -> str:
        return self.oid or self.name.replace("-", "_").upper()

    def visible_items(self, *, identifiers: bool) -> tuple[Item, ...]:
        return tuple(i for i in self.items if identifiers or not i.direct_identifier)

    def queryset(self) -> models.QuerySet:
        queryset = self.model_class()._default_manager.all()
        if self.select_related:
            queryset = queryset.select_related(*self.select_related)
        if self.prefetch_related:
            queryset = queryset.prefetch_related(*self.prefetch_related)
        return queryset.order_by(*self.ordering)


# --- items from model fields ---------------------------------------------------------------------

_TYPES: tuple[tuple[type, ItemType], ...] = (
    (models.BooleanField, ItemType.BOOLEAN),
    (models.DateTimeField, ItemType.DATETIME),
    (models.DateField, ItemType.DATE),
    (models.DecimalField, ItemType.FLOAT),
    (models.FloatField, ItemType.FLOAT),
    (models.IntegerField, ItemType.INTEGER),
)


def item_type_of(model_field: models.Field) -> ItemType:
    for field_class, item_type in _TYPES:
        if isinstance(model_field, field_class):
            return item_type
    return ItemType.TEXT


def model_items(model: type[models.Model], names: Iterable[str], **overrides) -> tuple[Item, ...]:
    """Items for the fields ``names`` of ``model``: label, type, code list and length from the
    field. ``overrides`` maps a name to an ``Item`` that replaces the derived one."""
    items = []
    for name in names:
        if name in overrides:
            items.append(overrides[name])
            continue
        model_field = model._meta.get_field(name)
        if not isinstance(model_field, models.Field):
            raise TypeError(f"{model.__name__}.{name} is a reverse relation, not an item")
        items.append(
            Item(
                name=name,
                label=str(model_field.verbose_name),
                type=item_type_of(model_field),
                source=name,
                codelist=tuple((str(k), str(v)) for k, v in model_field.flatchoices)
                if model_field.choices
                else (),
                length=getattr(model_field, "max_length", None),
            )
        )
    return tuple(items)


@dataclass(frozen=True)
class SignedForm:
    """Records of a form that investigators sign, for the ODM export (``SignatureDef`` in
    AdminData, ``Signature`` elements): an app's ``signed_forms``. ``model`` holds the
    signatures (``signer_id``, ``signed_at``, ``kind``), ``parent_field`` leads from a signature
    to the signed record of ``form_name``, ``meanings`` are (kind, meaning) pairs, ``current``
    gives a record's valid signature now for the snapshot (None: the signatures are in the
    archival file only)."""

    form_name: str
    model: type
    parent_field: str
    meanings: tuple[tuple[str, str], ...]
    current: Callable[[object], object] | None = None


def record_type_item(label: str = "Record type") -> Item:
    """The "app_label.model" of the record a generic relation (``content_type``) points to."""
    return Item(
        "record_type",
        label,
        ItemType.TEXT,
        Concat(
            "content_type__app_label",
            Value("."),
            "content_type__model",
            output_field=models.CharField(),
        ),
    )


# --- a subject's CRF -----------------------------------------------------------------------------

SUBJECT_ITEMS = (
    Item("subject", "Subject", ItemType.TEXT, "subject.subject_identifier"),
    Item("site", "Site code", ItemType.TEXT, "subject.site.code"),
)


def subject_form(
    *,
    items: tuple[Item, ...],
    select_related: tuple[str, ...] = (),
    then_by: tuple[str, ...] = (),
    **declaration,
) -> ExportForm:
    """A subject's CRF, declared by what it adds: every one opens with the subject's identifier
    and site code, reads the site with its records and lists them by site and subject, then by
    ``then_by`` (a repeating record's number), so that the exports of all forms line up."""
    return ExportForm(
        items=(*SUBJECT_ITEMS, *items),
        select_related=("subject__site", *select_related),
        ordering=("subject__site__code", "subject__sequence", *then_by),
        **declaration,
    )
