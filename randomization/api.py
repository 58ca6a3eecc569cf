"""Sponsor API endpoint of randomization that is not a form (``ROUTES``, this app's
``api_routes``): ``/api/v1/randomization-balance/``, the balance report
(``selectors.balance_report``).

The allocations themselves are exported from the registry (``randomization/export.py``) at
``/api/v1/allocations/``, like every form: never a slot, a block or a seed.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from core.api import CanReadExports
from core.contributions import ApiRoute

from . import selectors


class BalanceReportViewSet(viewsets.ViewSet):
    """Counts per arm per stratum, per site and per factor; free slots per stratum (study-wide
    users); stratification mismatches; warnings when a stratum runs low."""

    permission_classes = [CanReadExports]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def list(self, request, format=None):  # format: the router's ".json" suffix
        return Response(selectors.balance_report(request.user))


ROUTES = (ApiRoute("randomization-balance", BalanceReportViewSet, "randomization-balance"),)
