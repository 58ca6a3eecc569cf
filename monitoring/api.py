"""Sponsor API endpoint of monitoring that is not a form (``ROUTES``, this app's
``api_routes``): ``/api/v1/sdv-progress/``: % of the records the SDV plan asks for that are
verified, per site, per form and overall, for the sites the user sees
(``selectors.sdv_progress``). The records' verification, freeze/lock states and casebook
signatures are exported as forms (``monitoring/export.py``)."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.response import Response

from core.api import CanReadExports
from core.contributions import ApiRoute

from . import selectors


class SdvProgressViewSet(viewsets.ViewSet):
    """Source data verification progress: per site, per form, overall, and the plan."""

    permission_classes = [CanReadExports]

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def list(self, request, format=None):  # format: the router's ".json" suffix
        progress = selectors.sdv_progress(request.user)
        return Response(
            {
                "plan": progress["plan"],
                "total": progress["total"].as_dict(),
                "sites": [p.as_dict() for p in progress["sites"]],
                "forms": [p.as_dict() for p in progress["forms"]],
            }
        )


ROUTES = (ApiRoute("sdv-progress", SdvProgressViewSet, "sdv-progress"),)
