"""The sponsor's read-only subjects endpoint (``/api/v1/subjects/``).

No direct identifiers: no initials and no date of birth, the age at consent instead.
"""

import django_filters
from rest_framework import serializers

from core.api import ScopedReadOnlyViewSet, since_filter, site_code_filter

from .models import Subject, SubjectStatus


class SubjectSerializer(serializers.ModelSerializer):
    """A subject for the sponsor: no direct identifiers (no initials, no date of birth)."""

    site = serializers.CharField(source="site.code")
    age = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Subject
        fields = [
            "subject_identifier",
            "site",
            "screening_date",
            "age",
            "sex",
            "consent_date",
            "consent_version",
            "status",
            "status_date",
            "updated",
        ]


class SubjectFilter(django_filters.FilterSet):
    site = site_code_filter("site")
    status = django_filters.ChoiceFilter(choices=SubjectStatus.choices)
    updated_since = since_filter("updated")

    class Meta:
        model = Subject
        fields = ["site", "status", "updated_since"]


class SubjectViewSet(ScopedReadOnlyViewSet):
    queryset = Subject.objects.select_related("site")
    serializer_class = SubjectSerializer
    filterset_class = SubjectFilter
    lookup_field = "subject_identifier"


ROUTES = [("subjects", SubjectViewSet, "subject")]
