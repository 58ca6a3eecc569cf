from django.urls import path

from . import views

app_name = "adverse_events"
urlpatterns = [
    path("adverse-events/sae-due/", views.sae_due, name="sae_due"),
    path("subjects/<str:identifier>/adverse-events/", views.ae_list, name="list"),
    path("subjects/<str:identifier>/adverse-events/new/", views.ae_new, name="new"),
    path("subjects/<str:identifier>/adverse-events/<int:number>/", views.ae_edit, name="edit"),
    path(
        "subjects/<str:identifier>/adverse-events/<int:number>/sae-report/",
        views.ae_report,
        name="report",
    ),
]
