from django.urls import path

from . import views

app_name = "survival"
urlpatterns = [
    path("endpoints/", views.endpoints_report, name="endpoints"),
    path(
        "subjects/<str:identifier>/end-of-treatment/",
        views.end_of_treatment,
        name="end_of_treatment",
    ),
    path(
        "subjects/<str:identifier>/survival-follow-up/new/",
        views.follow_up_new,
        name="follow_up_new",
    ),
    path(
        "subjects/<str:identifier>/survival-follow-up/<int:number>/",
        views.follow_up,
        name="follow_up",
    ),
    path("subjects/<str:identifier>/end-of-study/", views.end_of_study, name="end_of_study"),
]
