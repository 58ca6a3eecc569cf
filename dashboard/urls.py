from django.urls import path

from . import views

app_name = "dashboard"
# Included under dashboard/ (edc/urls.py).
urlpatterns = [
    path("", views.home, name="home"),
]
