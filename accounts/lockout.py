"""Brute-force protection: an account is locked after repeated wrong passwords.

Every password check counts together (logins, the e-signature, a password change's old
password): they guess the same password. The state is read from the append-only security log
(``AuthEvent``) and nothing else is kept, so a lockout can neither be erased nor exist without
its record; this is why django-axes, with its own mutable tables, is not used. Unknown usernames
are locked like real ones, so the answer tells no one which accounts exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from core import access
from core.audit import clean_reason
from core.errors import AccessDenied, DomainError, ReasonRequired
from core.roles import Role

from .events import current_request, log_event
from .models import AuthEvent
from .sessions import end_sessions

Kind = AuthEvent.Kind
FAILURES = (Kind.LOGIN_FAILED, Kind.SIGNATURE_REFUSED, Kind.PASSWORD_REFUSED)
# Events after which earlier failures no longer count.
RESETS = (Kind.LOGIN, Kind.LOCKED_OUT, Kind.UNLOCKED)


class AccountLocked(DomainError):
    """Too many wrong passwords: the account is locked (the message says until when)."""


def failure_limit() -> int:
    return settings.LOCKOUT_FAILURES


def lock_duration() -> timedelta:
    return timedelta(minutes=settings.LOCKOUT_MINUTES)


@dataclass(frozen=True)
class Lock:
    username: str
    since: datetime
    until: datetime

    @property
    def message(self) -> str:
        return (
            f"Too many failed attempts: the account is locked for {settings.LOCKOUT_MINUTES} "
            f"minutes (until {self.until:%H:%M} UTC). If you need it sooner, ask a data manager "
            "to unlock it."
        )


def current_lock(username: str) -> Lock | None:
    """The lockout of ``username`` in force now, or None."""
    now = timezone.now()
    latest = (
        AuthEvent.objects.filter(username=username, kind__in=RESETS, at__gt=now - lock_duration())
        .order_by("-at", "-id")
        .values_list("kind", "at")
        .first()
    )
    if latest is None or latest[0] != Kind.LOCKED_OUT:
        return None
    return Lock(username, latest[1], latest[1] + lock_duration())


def refuse_if_locked(username: str, *, attempt: str, request=None) -> None:
    """Raise ``AccountLocked`` (and log the refused attempt) when ``username`` is locked.
    ``attempt`` names what was tried ("login", "e-signature")."""
    lock = current_lock(username)
    if lock is not None:
        log_event(Kind.LOCKED_ATTEMPT, username, request=request, attempt=attempt)
        raise AccountLocked(lock.message)


def lock_if_too_many_failures(username: str, *, request=None) -> Lock | None:
    """After a failure was logged: lock ``username`` when the failures since the last login,
    lockout or unlock, within the lockout period, reach the limit. Returns the new lock."""
    now = timezone.now()
    limit = failure_limit()
    kinds = (
        AuthEvent.objects.filter(
            username=username, kind__in=FAILURES + RESETS, at__gt=now - lock_duration()
        )
        .order_by("-at", "-id")
        .values_list("kind", flat=True)[: limit + 1]
    )
    failures = 0
    for kind in kinds:
        if kind in RESETS:
            break
        failures += 1
    if failures < limit:
        return None
    event = log_event(
        Kind.LOCKED_OUT,
        username,
        request=request,
        failures=failures,
        minutes=settings.LOCKOUT_MINUTES,
    )
    User = get_user_model()
    user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
    if user is not None:  # unknown usernames are locked too (they have no session)
        end_user_sessions(user, why="locked out", request=request)
    return Lock(username, event.at, event.at + lock_duration())


def end_user_sessions(user, *, why: str, request=None) -> int:
    """End every open session of ``user`` (a lockout, a deactivation), the request being served
    included when it is the user's; logged when there was one. Returns how many."""
    ended = end_sessions(user, request=request or current_request())
    if ended:
        log_event(
            Kind.SESSIONS_ENDED, user.get_username(), request=request, sessions=ended, why=why
        )
    return ended


def check_password(user, password: str, *, attempt: str, failure: str, request=None, **detail):
    """The password prompts of a logged-in ``user`` (``attempt``: "e-signature", "password
    change"): ``AccountLocked`` while the account is locked (logged, the password unchecked);
    else whether ``password`` is right. A wrong one is logged as ``failure`` (with ``detail``)
    and counts toward the lockout: ``AccountLocked`` when it is the one that locks."""
    if failure not in FAILURES:
        raise ValueError(f"{failure!r} is not a kind of failed password check.")
    username = user.get_username()
    refuse_if_locked(username, attempt=attempt, request=request)
    if password and user.check_password(password):
        return True
    log_event(failure, username, actor=user, request=request, **detail)
    if lock := lock_if_too_many_failures(username, request=request):
        raise AccountLocked(lock.message)
    return False


def login_failed(username: str, *, request=None) -> None:
    """A login was refused (wrong password, or the account is locked): logged; may lock."""
    if current_lock(username) is not None:
        log_event(Kind.LOCKED_ATTEMPT, username, request=request, attempt="login")
        return
    log_event(Kind.LOGIN_FAILED, username, request=request)
    lock_if_too_many_failures(username, request=request)


def may_unlock(user) -> bool:
    """Data managers (and superusers) unlock accounts."""
    return bool(user.is_authenticated and user.is_active) and (
        user.is_superuser or access.has_role(user, Role.DATA_MANAGER)
    )


def unlock(username: str, *, by, reason: str, request=None) -> Lock:
    """End the lockout of ``username`` now; logged with who and why. Returns the lock ended."""
    if not may_unlock(by):
        raise AccessDenied("Only a data manager can unlock an account.")
    reason = clean_reason(reason)
    if not any(ch.isalnum() for ch in reason):  # blank, or only invisible characters
        raise ReasonRequired("A reason is required to unlock an account.")
    lock = current_lock(username)
    if lock is None:
        raise DomainError(f'"{username}" is not locked: nothing to unlock.')
    log_event(
        Kind.UNLOCKED,
        username,
        actor=by,
        request=request,
        reason=reason,
        locked_at=lock.since.isoformat(),
    )
    return lock


class LockoutBackend:
    """First of ``AUTHENTICATION_BACKENDS``: a locked username is refused before any backend
    checks its password (``PermissionDenied`` stops ``authenticate``, which then reports a failed
    login). It authenticates no one itself and has no ``get_user``, so sessions name the backend
    that did (``ModelBackend``)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        username = kwargs.get(get_user_model().USERNAME_FIELD, username)
        if username and current_lock(username) is not None:
            raise PermissionDenied("account locked")
        return None
