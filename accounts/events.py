"""Writing the security log (logins, user and role changes, refused e-signatures)."""

from simple_history.models import HistoricalRecords

from .models import AuthEvent


def _request():
    return getattr(HistoricalRecords.context, "request", None)


def _ip(request):
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _actor(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def log_event(kind, username, *, actor=None, request=None, **detail):
    request = request or _request()
    return AuthEvent.objects.create(
        kind=kind,
        username=username or "",
        actor=actor or _actor(request),
        ip_address=_ip(request),
        detail=detail,
    )
