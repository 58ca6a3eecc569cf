"""The API's authentication (``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``, in this order).

``TokenAuthentication``: DRF's token, refused (401 with a sentence) while its account is locked
(``accounts.lockout``: the refused attempt is logged) or deactivated (DRF's own check). A request
with a wrong token, and one no credential authenticated (``SessionAuthentication`` comes last and
counts it), is throttled per client address (``core.throttling``): DRF's throttles run after the
permission check, which refuses such a request first, so its anonymous rate never applied.
"""

from drf_spectacular.authentication import SessionScheme
from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed

from core.throttling import throttle_unauthenticated

from . import lockout
from .events import log_event
from .models import AuthEvent


class TokenRefusedLocked(AuthenticationFailed):
    """A good token of a locked account (the message says until when)."""

    def __init__(self, detail, username):
        super().__init__(detail)
        self.username = username


class TokenAuthentication(authentication.TokenAuthentication):
    def authenticate(self, request):
        try:
            return super().authenticate(request)
        except AuthenticationFailed as exc:
            # Counted first: once the address is over its rate, a 429 and nothing more (no
            # security-log entry per refused request either).
            throttle_unauthenticated(request)
            if isinstance(exc, TokenRefusedLocked):
                log_event(
                    AuthEvent.Kind.LOCKED_ATTEMPT,
                    exc.username,
                    request=request._request,  # Django's: DRF's would authenticate again
                    attempt="api token",
                )
            raise

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)  # unknown, or inactive: refused
        lock = lockout.current_lock(user.get_username())
        if lock is not None:
            raise TokenRefusedLocked(lock.message, user.get_username())
        return user, token


class SessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication; last in the list, so a request it does not authenticate
    either is one no credential did: counted against the address's unauthenticated rate."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            throttle_unauthenticated(request)
        return result


class StudySessionScheme(SessionScheme):
    """The OpenAPI schema describes it as DRF's session authentication."""

    target_class = SessionAuthentication
