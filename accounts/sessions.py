"""The idle timeout of logged-in sessions.

A session expires ``SESSION_COOKIE_AGE`` (``SESSION_IDLE_MINUTES``, 30) after it was last saved.
Activity moves the expiry on by saving the session again, at most once a minute: the effect of
``SESSION_SAVE_EVERY_REQUEST`` without a database write on every request. The login itself
counts as activity (it saves the session anyway).
"""

from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import timezone

ACTIVE_KEY = "_edc_active"  # when the session's expiry was last moved on (epoch seconds)
TOUCH_EVERY = 60  # seconds


def _now() -> int:
    return int(timezone.now().timestamp())


@receiver(user_logged_in, dispatch_uid="edc_session_active_at_login")
def active_at_login(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is not None:
        session[ACTIVE_KEY] = _now()


class IdleSessionMiddleware:
    """After ``SessionMiddleware`` (whose response phase then saves the session)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and session.get(SESSION_KEY) is not None:
            now = _now()
            if now - session.get(ACTIVE_KEY, 0) >= TOUCH_EVERY:
                session[ACTIVE_KEY] = now  # modified: saved, with a new expiry and cookie
        return response
