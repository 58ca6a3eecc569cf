"""API building blocks shared by every endpoint: the error handler, the read-only scoped base
view set, the export permission, and the discovery of each app's routes.

A CRF's read endpoint is not written by hand: the exports app generates one for every form an
app declares in its ``export_forms`` (``core.contributions``). An app publishes other endpoints
(a report, like randomization's balance report) in its ``api_routes``:
``ApiRoute("randomization-balance", BalanceReportViewSet, "randomization-balance")``.
The router module (``exports/urls.py``, imported by the URLconf only) registers them all.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status, viewsets
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import access, registry
from .contributions import ApiRoute
from .errors import AccessDenied, DomainError


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


def discovered_routes() -> list[ApiRoute]:
    """(prefix, view set, basename) of every project app's ``api_routes``, in layer order."""
    return registry.api_routes()


# --- the OpenAPI schema: the errors every operation can answer, what a parameter takes -----------

# A parameter value without a NUL (edc.nul_bytes refuses one in any address or parameter) ...
NO_NUL = r"^[^\u0000]*$"
# ... and with a character other than white space (an empty or blank value is a 400:
# exports.params.refuse_empty). The class leaves out every character str.strip() strips.
NOT_BLANK = (
    r"^[^\u0000]*"
    r"[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    r"[^\u0000]*$"
)
ERROR = {
    "type": "object",
    "description": "Why the request was refused, in sentences: detail, or per parameter.",
    "properties": {
        "detail": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
    },
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
# Every operation is authenticated (token or session), checked against the role, throttled, and
# reads its parameters strictly; DRF answers an unknown ?format= with a 404.
ERRORS = {
    "400": "A parameter is unknown, empty, malformed or outside its values, or the address or "
    "a parameter has a NUL character (%00): the answer names it.",
    "401": "No credentials, or a token that is not valid.",
    "403": "Your role does not give access to this export.",
    "404": "No such record within your sites, or no such format.",
    "429": "Too many requests: try again after the seconds the answer gives.",
}


def document_errors(result, generator, request, public):
    """drf-spectacular postprocessing hook: the error answers every operation can give
    (``ERRORS``, with the ``Error`` body of ``exception_handler`` and DRF), and a string
    parameter that declares no values, format or pattern of its own takes what the API takes:
    no NUL, not blank (``NOT_BLANK``). A client and the API fuzzer (tests/test_fuzz_api.py,
    which checks both) read the schema as the contract."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, description in ERRORS.items():
                responses.setdefault(code, {"description": description, "content": body})
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if schema.get("type") == "string" and not {"enum", "format", "pattern"} & set(
                    schema
                ):
                    schema["pattern"] = NOT_BLANK
    return result
