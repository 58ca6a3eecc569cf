"""The sponsor API ``/api/v1/``: the OpenAPI schema, its docs page, and the routes every project
app publishes in its ``api.ROUTES`` (``core.api.discovered_routes``). Only the URLconf imports
this module; no app imports ``exports``."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from core.api import discovered_routes

router = DefaultRouter()
for prefix, viewset, basename in discovered_routes():
    router.register(prefix, viewset, basename=basename)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    *router.urls,
]
