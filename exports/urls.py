"""The sponsor API ``/api/v1/``: the OpenAPI schema, its docs page, the read API of every
exported form (``exports.api.form_routes``: one per ``ExportForm`` of the registry), the audit
trail and the deletions feed, the file exports, and the routes project apps still publish in
their ``api_routes`` (``core.api.discovered_routes``: reports that are not forms). Only the
URLconf imports this module; no app imports ``exports``.

``urlpatterns`` and ``router`` are built when asked (the URL resolver asks once per build), from
the forms installed then: a test that installs a CRF app finds its endpoint once it clears the URL
caches.
"""

from django.core.exceptions import ImproperlyConfigured
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from core.api import discovered_routes

from .api import feed_routes, form_routes
from .dataset_json import DatasetJsonView
from .views_odm import OdmExportView


def api_router() -> DefaultRouter:
    router = DefaultRouter()
    for prefix, viewset, basename in [*form_routes(), *feed_routes(), *discovered_routes()]:
        if any(registered == prefix for registered, _, _ in router.registry):
            raise ImproperlyConfigured(
                f"/api/v1/{prefix}/ is published twice (a form and a route)."
            )
        router.register(prefix, viewset, basename=basename)
    return router


def api_urlpatterns() -> list:
    return [
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
        path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
        path("exports/odm/", OdmExportView.as_view(), name="export-odm"),
        # CDISC Dataset-JSON: /exports/dataset-json/dm/, .../ae.ndjson, ...?format=ndjson
        re_path(
            r"^exports/dataset-json/(?P<domain>[^/]+?)/?$",
            DatasetJsonView.as_view(),
            name="export-dataset-json",
        ),
        *api_router().urls,
    ]


def __getattr__(name: str):
    if name == "urlpatterns":
        return api_urlpatterns()
    if name == "router":
        return api_router()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
