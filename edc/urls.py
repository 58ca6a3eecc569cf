from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from accounts import sessions
from accounts.forms import LoginForm, with_lockout_message
from core import registry

# Both login pages say when an account is locked (accounts.lockout); /healthz is answered by
# edc.health.HealthCheckMiddleware before any URL is resolved.
admin.site.login_form = with_lockout_message(admin.site.login_form)


def site_urlpatterns() -> list:
    """The login pages, every app's pages (its ``site_urls``, in layer order), the admin and
    the sponsor API (mounted here, not declared by the exports app: its modules read the
    registry as they load, so its contributions could not import them)."""
    return [
        path("", RedirectView.as_view(pattern_name="subjects:list", permanent=False)),
        path(
            "accounts/login/",
            auth_views.LoginView.as_view(authentication_form=LoginForm),
            name="login",
        ),
        path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
        # The idle-timeout warning's questions (JSON): time left, and "Stay signed in".
        path("accounts/session/", sessions.status, name="session_status"),
        path("accounts/session/keep-alive/", sessions.keep_alive, name="session_keep_alive"),
        *(path(urls.prefix, include(urls.urlconf)) for urls in registry.site_urls()),
        path("admin/", admin.site.urls),
        path("api/v1/", include("exports.urls")),
    ]


def __getattr__(name: str):
    """``urlpatterns``, built when Django builds its URL resolver, from the apps installed then:
    an app added to INSTALLED_APPS needs no line here, and a test that installs one finds its
    pages once it clears the URL caches (``django.urls.clear_url_caches``)."""
    if name == "urlpatterns":
        return site_urlpatterns()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# A database lost while a middleware works (a session saved as the response leaves) is the same
# 503 "the database is unavailable" as in a view; anything else, Django's 400 or 500 page.
handler400 = "edc.middleware.bad_request"
handler500 = "edc.middleware.server_error"
