"""``/api/v1/exports/odm/``: the CDISC ODM 1.3.2 file of the user's sites, streamed
(``?archival=1``: the Transactional, Archival file with the audit trail; ``?forms=``: some forms
only). Same authentication
(token or session) and permission as every other export."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from core.api import CanReadExports

from . import odm, params

TRUE = {"1", "true", "yes", "on"}
FALSE = {"", "0", "false", "no", "off"}


def form_names(value: str | None) -> list[str] | None:
    """``forms=adverse-events,treatment-cycles``: the forms of ClinicalData (None: all)."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise ValidationError(
            {"forms": "Name at least one form (e.g. forms=adverse-events), or leave forms out."}
        )
    return names


def archival_flag(value: str | None) -> bool:
    text = (value or "").strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValidationError({"archival": "Use archival=1 (the audit trail) or archival=0."})


class OdmExportView(APIView):
    """The file is XML whatever the request accepts; errors (400, 401, 403) are JSON."""

    permission_classes = [CanReadExports]
    renderer_classes = [JSONRenderer]

    def perform_content_negotiation(self, request, force=False):
        return super().perform_content_negotiation(request, force=True)

    @extend_schema(
        summary="CDISC ODM 1.3.2 export",
        description="The study's metadata (from the export registry), sites and users, and the "
        "clinical data of your sites as one ODM 1.3.2 XML file, streamed. archival=1: every "
        "change as a transaction with its AuditRecord, and the e-signatures.",
        parameters=[
            OpenApiParameter(
                "archival",
                OpenApiTypes.BOOL,
                description="1: the Transactional, Archival file with the audit trail.",
            ),
            OpenApiParameter(
                "forms",
                str,
                pattern=params.list_pattern(form.name for form in odm.clinical_forms()),
                description="Comma-separated form names (e.g. adverse-events): the clinical "
                "data of these forms only, with the subjects' form (default: every form). "
                f"Forms: {', '.join(form.name for form in odm.clinical_forms())}.",
            ),
        ],
        responses={(200, "application/xml"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    def get(self, request):
        archival = archival_flag(request.query_params.get("archival"))
        try:
            export = odm.export_for(
                request.user,
                archival=archival,
                forms=form_names(request.query_params.get("forms")),
            )
        except odm.UnknownForm as exc:
            raise ValidationError({"forms": str(exc)}) from None
        response = StreamingHttpResponse(
            export.chunks(), content_type="application/xml; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        return response
