from django.urls import path

from . import views

app_name = "randomization"
# Included under /subjects/<identifier>/randomize/ (edc/urls.py).
urlpatterns = [
    path("", views.randomize, name="randomize"),
]
