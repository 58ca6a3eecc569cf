"""The sponsor's read-only adverse-events endpoint (``/api/v1/adverse-events/``).

No direct identifiers: the subject appears by its pseudonymous identifier only. Filters: ``site``
(site code), ``updated_since`` (ISO 8601, UTC), ``serious``.
"""

import django_filters
from rest_framework import serializers

from core.api import ScopedReadOnlyViewSet, since_filter, site_code_filter

from .models import SERIOUS_CRITERIA_FIELDS, AdverseEvent, AeCausality


class CausalitySerializer(serializers.ModelSerializer):
    class Meta:
        model = AeCausality
        fields = ["drug", "causality", "related", "action_taken"]


class AdverseEventSerializer(serializers.ModelSerializer):
    subject = serializers.CharField(source="subject.subject_identifier")
    site = serializers.CharField(source="subject.site.code")
    meddra_code = serializers.CharField(source="term.meddra_code")
    term = serializers.CharField(source="term.term")
    soc = serializers.CharField(source="term.soc")
    sae_due_at = serializers.DateTimeField(read_only=True, allow_null=True)
    causality = CausalitySerializer(source="causalities", many=True, read_only=True)

    class Meta:
        model = AdverseEvent
        fields = [
            "id",
            "subject",
            "site",
            "ae_number",
            "meddra_code",
            "term",
            "soc",
            "verbatim_term",
            "grade",
            "onset_date",
            "end_date",
            "ongoing",
            "serious",
            *SERIOUS_CRITERIA_FIELDS,
            "site_aware_at",
            "sae_due_at",
            "sae_reported_at",
            "outcome",
            "death_date",
            "immune_related",
            "treatment_given",
            "treatment_details",
            "causality",
            "created",
            "updated",
        ]


class AdverseEventFilter(django_filters.FilterSet):
    site = site_code_filter("subject__site")
    updated_since = since_filter("updated")
    serious = django_filters.BooleanFilter()

    class Meta:
        model = AdverseEvent
        fields = ["site", "updated_since", "serious"]


class AdverseEventViewSet(ScopedReadOnlyViewSet):
    queryset = AdverseEvent.objects.select_related("subject__site", "term").prefetch_related(
        "causalities"
    )
    serializer_class = AdverseEventSerializer
    filterset_class = AdverseEventFilter


ROUTES = [("adverse-events", AdverseEventViewSet, "adverse-event")]
