"""The database column behind an exported item, when there is one: filters, orderings and the
COPY path of the CSV need it; an item computed in Python (a property, a function) has none."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist
from django.db.models import CharField, Model

from core.export_spec import ItemType, item_type_of


@dataclass(frozen=True)
class Column:
    """An item that is a column of the form's table (or of a table it reaches)."""

    path: str  # ORM path
    nullable: bool
    unique: bool
    short_text: bool = False  # a CharField (text to match exactly), not a TextField
    item_type: ItemType | None = None  # the type the model field has (``item_type_of``)


def column_of(model: type[Model], source) -> Column | None:
    """The database column behind an item's source path ("subject.site.code"), or None when
    the value is computed (a property, a function)."""
    if not isinstance(source, str):
        return None
    if source == "pk":
        return Column("pk", False, True, item_type=ItemType.INTEGER)
    *relations, last = source.split(".")
    nullable, unique = False, True
    try:
        for name in relations:
            relation = model._meta.get_field(name)
            if not (relation.concrete and (relation.many_to_one or relation.one_to_one)):
                return None
            nullable |= relation.null
            unique &= relation.one_to_one or relation.unique
            model = relation.related_model
        final = model._meta.get_field(last)
    except FieldDoesNotExist:
        return None
    if not final.concrete or final.is_relation:
        return None
    return Column(
        "__".join([*relations, last]),
        nullable or final.null,
        unique and final.unique,
        isinstance(final, CharField),
        item_type_of(final),
    )
