from django.urls import path

from . import views

app_name = "randomization"
# Included under /subjects/<identifier>/randomize/ (its contributions.py).
urlpatterns = [
    path("", views.randomize, name="randomize"),
]
