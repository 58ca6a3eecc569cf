"""What the sponsor exports of data queries: each query and its thread (``core.export_spec``).
The offending values may hold a direct identifier: the export masks them for pseudonymized
roles like every other export (``selectors.shown_snapshot``)."""

from core.export_spec import (
    ChildGroup,
    ExportForm,
    Item,
    ItemType,
    model_items,
    record_type_item,
)

from .models import DataQuery, QueryMessage

FORMS = [
    ExportForm(
        name="queries",
        label="Data queries",
        model="queries.DataQuery",
        oid="DQ",
        repeating=True,
        select_related=("subject", "site", "content_type", "raised_by"),
        prefetch_related=("thread__author",),
        ordering=("opened_at", "pk"),
        items=(
            Item("id", "Query", ItemType.INTEGER, "pk"),
            Item("subject", "Subject", ItemType.TEXT, "subject.subject_identifier"),
            Item("site", "Site code", ItemType.TEXT, "site.code"),
            record_type_item(),
            *model_items(DataQuery, ("object_id", "field", "record_label", "check_code")),
            *model_items(DataQuery, ("severity",)),
            Item("raised_by", "Raised by", ItemType.TEXT, "raised_by.username"),
            *model_items(
                DataQuery,
                ("message", "status", "resolution", "opened_at", "closed_at", "updated"),
            ),
        ),
        children=(
            ChildGroup(
                name="thread",
                label="Messages",
                related="thread",
                model="queries.QueryMessage",
                parent_field="query",
                items=(
                    *model_items(QueryMessage, ("kind",)),
                    Item("author", "Author", ItemType.TEXT, "author.username"),
                    *model_items(QueryMessage, ("at", "text", "response_reason")),
                ),
            ),
        ),
    ),
]
