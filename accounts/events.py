"""Writing the security log (logins, user and role changes, refused e-signatures).

A change made with a reason (a user or a role changed in the admin, whose forms require one)
runs inside ``change_reason(reason)``: every entry written meanwhile, by whichever receiver
(``accounts.signals``), carries it in its ``detail["reason"]``.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from simple_history.models import HistoricalRecords

from .models import AuthEvent

_reason: ContextVar[str] = ContextVar("edc_security_change_reason", default="")


@contextmanager
def change_reason(reason: str):
    """The security-log entries written inside carry ``reason``."""
    token = _reason.set((reason or "").strip())
    try:
        yield
    finally:
        _reason.reset(token)


def current_reason() -> str:
    return _reason.get()


def current_request():
    """The request being served (simple-history's middleware keeps it), or None."""
    return getattr(HistoricalRecords.context, "request", None)


def _ip(request):
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _actor(request):
    user = getattr(request, "user", None)
    return user if user is not None and user.is_authenticated else None


def log_event(kind, username, *, actor=None, request=None, **detail):
    request = request or current_request()
    reason = current_reason()
    if reason and "reason" not in detail:
        detail["reason"] = reason
    return AuthEvent.objects.create(
        kind=kind,
        username=username or "",
        actor=actor or _actor(request),
        ip_address=_ip(request),
        detail=detail,
    )
