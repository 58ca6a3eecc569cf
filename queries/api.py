"""The read-only data queries endpoint (``/api/v1/queries/``), each query with its thread.

Scoped like every export (the study team, each within its sites). Filters: ``site`` (site code),
``status``, ``check`` (an edit check's code, or ``manual`` for queries raised by hand),
``subject`` (subject identifier), ``updated_since`` (ISO 8601, UTC). The sponsor's people never
get a direct identifier: a date of birth or initials among the offending values is replaced by
"(not shown to your role)".
"""

import django_filters
from rest_framework import serializers

from core.api import ScopedReadOnlyViewSet, since_filter, site_code_filter

from . import selectors
from .models import DataQuery, QueryMessage, QueryStatus

MANUAL = "manual"


class QueryMessageSerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author.username")

    class Meta:
        model = QueryMessage
        fields = ["kind", "author", "at", "text", "response_reason"]


class DataQuerySerializer(serializers.ModelSerializer):
    subject = serializers.CharField(source="subject.subject_identifier")
    site = serializers.CharField(source="site.code")
    record_type = serializers.SerializerMethodField(help_text="app_label.model of the record.")
    check = serializers.CharField(source="check_code", help_text="Blank: raised by hand.")
    raised_by = serializers.CharField(
        source="raised_by.username", help_text='"edc-system" for the edit checks.'
    )
    value_snapshot = serializers.SerializerMethodField(
        help_text="The offending values when the query was raised (or last changed)."
    )
    thread = QueryMessageSerializer(many=True, read_only=True)

    class Meta:
        model = DataQuery
        fields = [
            "id",
            "subject",
            "site",
            "record_type",
            "object_id",
            "field",
            "record_label",
            "check",
            "severity",
            "raised_by",
            "message",
            "value_snapshot",
            "status",
            "resolution",
            "opened_at",
            "closed_at",
            "updated",
            "thread",
        ]

    def get_record_type(self, obj) -> str:
        return f"{obj.content_type.app_label}.{obj.content_type.model}"

    def get_value_snapshot(self, obj) -> dict:
        request = self.context.get("request")
        return selectors.shown_snapshot(obj, getattr(request, "user", None))


class DataQueryFilter(django_filters.FilterSet):
    site = site_code_filter("site")
    status = django_filters.ChoiceFilter(choices=QueryStatus.choices)
    check = django_filters.CharFilter(
        method="filter_check", help_text='Edit check code, e.g. SUBJ-005; "manual": raised by hand.'
    )
    subject = django_filters.CharFilter(
        field_name="subject__subject_identifier", help_text="Subject identifier, e.g. 101-0001."
    )
    updated_since = since_filter("updated")

    class Meta:
        model = DataQuery
        fields = ["site", "status", "check", "subject", "updated_since"]

    def filter_check(self, queryset, name, value):
        return queryset.filter(check_code="" if value == MANUAL else value)


class DataQueryViewSet(ScopedReadOnlyViewSet):
    queryset = DataQuery.objects.all()
    serializer_class = DataQuerySerializer
    filterset_class = DataQueryFilter

    def get_queryset(self):
        return selectors.with_thread(selectors.visible_queries(self.request.user))


ROUTES = [("queries", DataQueryViewSet, "data-query")]
