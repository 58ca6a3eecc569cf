from django.urls import path

from . import views

app_name = "subjects"
urlpatterns = [
    path("", views.subject_list, name="list"),
    path("new/", views.register, name="register"),
    path("<str:identifier>/", views.subject_detail, name="detail"),
    path("<str:identifier>/consent/", views.consent, name="consent"),
    path("<str:identifier>/edit/", views.edit_demographics, name="edit"),
    path("<str:identifier>/status/", views.change_status, name="status"),
    path("<str:identifier>/delete/", views.delete, name="delete"),
]
