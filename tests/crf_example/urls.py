from django.urls import path

from . import views

app_name = "crf_example"
# Included under subjects/<str:identifier>/vital-signs/ (its contributions.py).
urlpatterns = [
    path("new/", views.new, name="new"),
    path("<int:pk>/", views.edit, name="edit"),
]
