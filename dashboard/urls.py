from django.urls import path

from . import views

app_name = "dashboard"
# Included under dashboard/ (its contributions.py).
urlpatterns = [
    path("", views.home, name="home"),
]
