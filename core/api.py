"""API building blocks shared by every endpoint: the error handler, the read-only scoped base
view set, the export permission, and the discovery of each app's routes.

A CRF's read endpoint is not written by hand: the exports app generates one for every form an
app declares in ``export.FORMS`` (``core.export_spec``). An app publishes other endpoints (a
report, like randomization's balance report) by listing them in ``ROUTES`` in its ``api``
module: ``ROUTES = [("randomization-balance", BalanceReportViewSet, "randomization-balance")]``.
The router module (``exports/urls.py``, imported by the URLconf only) registers them all.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import access
from .errors import AccessDenied, DomainError
from .registry import collected


def exception_handler(exc, context):
    """DRF's handler, plus domain and model validation errors as 400/403 with their sentence."""
    if isinstance(exc, AccessDenied):
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, DomainError):
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        return Response(detail, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


class CanReadExports(BasePermission):
    """The study team reads the exports, each within its scope (``access.can_read_exports``)."""

    message = "Your role does not give access to the sponsor exports."

    def has_permission(self, request, view):
        return access.can_read_exports(request.user)


class ScopedReadOnlyViewSet(viewsets.ReadOnlyModelViewSet):
    """Base of every export endpoint: read-only, role-checked, narrowed to the user's sites."""

    permission_classes = [CanReadExports]

    def get_queryset(self):
        return access.scope_to_user(super().get_queryset(), self.request.user)


def discovered_routes() -> list[tuple[str, type, str]]:
    """(prefix, view set, basename) of every project app's ``api.ROUTES``, in app order."""
    return collected("api", "ROUTES")
