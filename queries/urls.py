from django.urls import path

from . import views

app_name = "queries"
# Included under queries/ (its contributions.py).
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("raise/", views.raise_query, name="raise"),
    path("bulk/", views.bulk_raise, name="bulk"),
    path("report/", views.report, name="report"),
    path("<int:pk>/", views.detail, name="detail"),
    path("<int:pk>/<slug:action>/", views.act, name="act"),
]
