"""The API's authentication (``REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"]``, in this order).

``TokenAuthentication``: DRF's token, refused (401 with a sentence) while its account is locked
(``accounts.lockout``: the refused attempt is logged) or deactivated (DRF's own check).
"""

from rest_framework import authentication
from rest_framework.exceptions import AuthenticationFailed

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
