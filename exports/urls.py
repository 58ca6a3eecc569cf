from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from adverse_events.api import AdverseEventViewSet
from randomization import api as randomization_api

from . import views

router = DefaultRouter()
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("adverse-events", AdverseEventViewSet, basename="adverse-event")
router.register("allocations", randomization_api.AllocationViewSet, basename="allocation")
router.register(
    "randomization-balance",
    randomization_api.BalanceReportViewSet,
    basename="randomization-balance",
)

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    *router.urls,
]
