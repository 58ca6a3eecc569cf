"""Sponsor API endpoints of randomization (published in ``ROUTES``).

* ``/api/v1/allocations/``: allocations, scoped to the user's sites; never a slot, a block or
  a seed (those stay with the statistician).
* ``/api/v1/randomization-balance/``: the balance report (``selectors.balance_report``).
"""

import django_filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response

from core.api import CanReadExports, ScopedReadOnlyViewSet, since_filter, site_code_filter

from . import selectors
from .arms import Arm
from .models import Allocation


class AllocationSerializer(serializers.ModelSerializer):
    subject_identifier = serializers.CharField(source="subject.subject_identifier")
    site = serializers.CharField(source="subject.site.code")
    arm_label = serializers.CharField(read_only=True)
    stratum = serializers.CharField(source="stratum.code")
    allocated_by = serializers.CharField(source="allocated_by.get_username")

    class Meta:
        model = Allocation
        fields = [
            "subject_identifier",
            "site",
            "randomization_number",
            "arm",
            "arm_label",
            "stratum",
            "macrovascular_or_extrahepatic",
            "ecog",
            "prior_locoregional_therapy",
            "allocated_at",
            "allocated_by",
        ]


class AllocationFilter(django_filters.FilterSet):
    site = site_code_filter("subject__site")
    arm = django_filters.ChoiceFilter(choices=Arm.choices)
    allocated_since = since_filter("allocated_at")

    class Meta:
        model = Allocation
        fields = ["site", "arm", "allocated_since"]


class AllocationViewSet(ScopedReadOnlyViewSet):
    queryset = Allocation.objects.select_related("subject__site", "stratum", "allocated_by")
    serializer_class = AllocationSerializer
    filterset_class = AllocationFilter
    lookup_field = "subject__subject_identifier"
    lookup_url_kwarg = "subject_identifier"


class BalanceReportViewSet(viewsets.ViewSet):
    """Counts per arm per stratum, per site and per factor; free slots per stratum (study-wide
    users); stratification mismatches; warnings when a stratum runs low."""

    permission_classes = [CanReadExports]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def list(self, request):
        return Response(selectors.balance_report(request.user))


ROUTES = [
    ("allocations", AllocationViewSet, "allocation"),
    ("randomization-balance", BalanceReportViewSet, "randomization-balance"),
]
