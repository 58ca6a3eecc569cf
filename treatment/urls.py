"""Pages under ``subjects/<identifier>/treatment/`` (the prefix is in contributions.py)."""

from django.urls import path

from . import views

app_name = "treatment"

urlpatterns = [
    path("", views.calendar, name="calendar"),
    path("cycles/new/", views.cycle_new, name="cycle_new"),
    path("cycles/<int:number>/", views.cycle_edit, name="cycle"),
    path("sorafenib/new/", views.oral_period_new, name="oral_period_new"),
    path("sorafenib/<int:pk>/", views.oral_period_edit, name="oral_period"),
]
