from django.urls import path

from . import views

app_name = "monitoring"
# Included under monitoring/ (its contributions.py).
urlpatterns = [
    path("", views.worklist, name="worklist"),
    path("lock/", views.lock_console, name="lock_console"),
    path("lock/study/", views.study_lock, name="study_lock"),
    path("verify/<int:content_type_id>/<int:object_id>/", views.verify, name="verify"),
    path(
        "records/<int:content_type_id>/<int:object_id>/state/",
        views.record_state,
        name="record_state",
    ),
    path("subjects/<str:identifier>/state/", views.casebook_state, name="casebook_state"),
    path("subjects/<str:identifier>/sign/", views.sign_casebook, name="sign_casebook"),
]
