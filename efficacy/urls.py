from django.urls import path

from . import views

# Mounted at subjects/<str:identifier>/efficacy/ (its contributions.py).
app_name = "efficacy"
urlpatterns = [
    path("", views.home, name="home"),
    path("target-lesions/new/", views.target_new, name="target_new"),
    path("target-lesions/<int:number>/", views.target_edit, name="target_edit"),
    path("non-target-lesions/new/", views.non_target_new, name="non_target_new"),
    path("non-target-lesions/<int:number>/", views.non_target_edit, name="non_target_edit"),
    path("assessments/new/", views.assessment_new, name="assessment_new"),
    path("assessments/<int:number>/", views.assessment, name="assessment"),
]
