"""The API's throttle of unauthenticated requests (no credential, or a wrong token).

DRF's throttles run after the permission check, which refuses an unauthenticated request first:
its anonymous rate never applied. The authentication classes count these requests themselves
(``accounts.authentication``), with this module. It imports no view module: the authentication
classes are loaded while DRF's views are.
"""

from rest_framework.exceptions import Throttled
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class UnauthenticatedRateThrottle(SimpleRateThrottle):
    """Requests no credential authenticated (none, or a wrong token), per client address: the
    ``anon`` rate (``API_THROTTLE_ANON``). The address is ``REMOTE_ADDR``, or the one the trusted
    proxies put in X-Forwarded-For (``NUM_PROXIES``): a client's own header changes nothing.
    It never asks ``request.user``: it runs while authentication is deciding it."""

    scope = "anon"

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # read now: tests change it

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


def throttle_unauthenticated(request) -> None:
    """Count an unauthenticated request of ``request``'s address; ``Throttled`` (429 with a
    sentence) once the address is over its rate. The authentication classes call it
    (``accounts.authentication``), before any permission check refuses the request."""
    from rest_framework.views import APIView  # here: DRF's views import the authentication

    throttle = UnauthenticatedRateThrottle()
    if not throttle.allow_request(request, APIView()):  # the rate is the same for every view
        raise Throttled(
            wait=throttle.wait(),
            detail="Too many requests without valid credentials from your address.",
        )
