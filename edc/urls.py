from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import sessions
from accounts.forms import LoginForm, with_lockout_message

# Both login pages say when an account is locked (accounts.lockout); /healthz is answered by
# edc.health.HealthCheckMiddleware before any URL is resolved.
admin.site.login_form = with_lockout_message(admin.site.login_form)

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="subjects:list", permanent=False)),
    path(
        "accounts/login/", auth_views.LoginView.as_view(authentication_form=LoginForm), name="login"
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # The idle-timeout warning's questions (JSON): time left, and "Stay signed in".
    path("accounts/session/", sessions.status, name="session_status"),
    path("accounts/session/keep-alive/", sessions.keep_alive, name="session_keep_alive"),
    path("subjects/<str:identifier>/randomize/", include("randomization.urls")),
    path("subjects/<str:identifier>/eligibility/", include("eligibility.urls")),
    path("subjects/", include("subjects.urls")),
    path("", include("adverse_events.urls")),  # AE CRF pages and "SAE reports due"
    path("subjects/<str:identifier>/treatment/", include("treatment.urls")),
    path("subjects/<str:identifier>/efficacy/", include("efficacy.urls")),
    path("", include("survival.urls")),  # end of treatment/study pages and the endpoints report
    path("queries/", include("queries.urls")),
    path("monitoring/", include("monitoring.urls")),
    path("dashboard/", include("dashboard.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("exports.urls")),
]

# A database lost while a middleware works (a session saved as the response leaves) is the same
# 503 "the database is unavailable" as in a view; anything else, Django's 400 or 500 page.
handler400 = "edc.middleware.bad_request"
handler500 = "edc.middleware.server_error"
