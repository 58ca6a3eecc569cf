from django.urls import path

from . import views

app_name = "eligibility"
# Included under subjects/<str:identifier>/eligibility/ (its contributions.py).
urlpatterns = [
    path("", views.detail, name="detail"),
    path("edit/", views.edit, name="edit"),
    path("sign/", views.sign, name="sign"),
    path("screen-failure/", views.screen_failure, name="screen_failure"),
]
