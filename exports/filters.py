import django_filters

from subjects.models import Subject, SubjectStatus


class SubjectFilter(django_filters.FilterSet):
    site = django_filters.CharFilter(field_name="site__code", help_text="Site code, e.g. 101.")
    status = django_filters.ChoiceFilter(choices=SubjectStatus.choices)
    updated_since = django_filters.IsoDateTimeFilter(
        field_name="updated", lookup_expr="gte", help_text="ISO 8601 date-time, UTC."
    )

    class Meta:
        model = Subject
        fields = ["site", "status", "updated_since"]
