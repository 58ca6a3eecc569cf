"""The idle timeout of logged-in sessions, the warning before it, and the form it interrupts.

Activity moves the expiry on by saving the session at most every ``touch_every()`` (a tenth of
the timeout, a minute at most): ``SESSION_SAVE_EVERY_REQUEST`` without a write per request, and
an active user is never logged out whatever the setting. A form posted after the end saves
nothing; what was typed (never passwords or tokens) is given back once, to the same user only.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib import import_module
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.signals import user_logged_in
from django.core.signing import BadSignature
from django.dispatch import receiver
from django.http import JsonResponse
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.functional import cached_property
from django.views.decorators.http import require_GET, require_POST

from core.forms import SUBMISSION_FIELD

ACTIVE_KEY = "_edc_active"  # when the session was last saved: its expiry moved (epoch seconds)
KEPT_KEY = "_edc_kept_input"  # the input of a form posted after the session ended
WHO_COOKIE = "edc_signed_in"  # the user id of the browser's last session, signed
WHO_SALT = "accounts.sessions.who"
KEEP_SECONDS = 3600  # how long the kept input waits for its user's login
MAX_KEPT_CHARS = 64_000  # a bigger post is not kept (the message says nothing was kept)
# Never kept: secrets (an e-signature is a password re-entered), and the per-page tokens: the
# page shown after login has fresh ones (a CSRF token is never replayed).
NOT_KEPT = re.compile(r"password|passwd|secret|csrf", re.IGNORECASE)
NOT_KEPT_NAMES = {SUBMISSION_FIELD}

EXPIRED = "Your session ended after {minutes} of inactivity: nothing was saved. Log in to go on."
EXPIRED_KEPT = (
    "Your session ended after {minutes} of inactivity: nothing was saved. Log in again and the "
    "form will show what you typed (passwords excepted), for you to check and submit."
)
RESTORED = (
    "What you typed before your session ended is back in the form below: nothing has been saved "
    "yet. Check it and submit."
)


def _now() -> float:
    return timezone.now().timestamp()


def idle_seconds() -> int:
    return settings.SESSION_COOKIE_AGE


def touch_every() -> int:
    """Seconds between two saves of an active session: a tenth of the timeout, a minute at most
    (a request after a shorter time writes nothing)."""
    return max(1, min(60, idle_seconds() // 10))


def warn_before() -> int:
    """Seconds before the end the page warns: a quarter of the timeout, five minutes at most."""
    return min(300, idle_seconds() // 4)


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return "1 minute" if minutes == 1 else f"{minutes} minutes"


@receiver(user_logged_in, dispatch_uid="edc_session_active_at_login")
def active_at_login(sender, request, user, **kwargs):
    session = getattr(request, "session", None)
    if session is None:
        return
    session[ACTIVE_KEY] = _now()
    kept = session.get(KEPT_KEY)
    if kept is not None and kept.get("user") != str(user.pk):
        del session[KEPT_KEY]  # typed by someone else: never shown to this user


class IdleSession:
    """What the pages know of the session (the ``idle_session`` of their context)."""

    def __init__(self, request):
        self.request = request

    @cached_property
    def now(self) -> datetime:
        return timezone.now()

    @cached_property
    def ends(self) -> datetime:
        """When the session ends without another request (its last save plus the timeout)."""
        last = self.request.session.get(ACTIVE_KEY) or self.now.timestamp()
        return datetime.fromtimestamp(last + idle_seconds(), tz=UTC)

    @property
    def seconds_left(self) -> int:
        return max(0, round((self.ends - self.now).total_seconds()))

    # A page just served leaves its session at least ``idle - refresh`` seconds (the request
    # saved it, or the last save is younger than ``refresh``): the page asks ``status`` for the
    # exact time before warning. Only settings in the page, no clock: two requests for the
    # same page give the same page.
    @property
    def idle_seconds(self) -> int:
        return idle_seconds()

    @property
    def refresh_seconds(self) -> int:
        return touch_every()

    @property
    def warn_seconds(self) -> int:
        return warn_before()

    @cached_property
    def kept_input(self) -> dict | None:
        """The input this user typed on this URL before their session ended, taken out of the
        session (shown once), or None."""
        session = self.request.session
        kept = session.get(KEPT_KEY)
        if not (kept and self.request.method == "GET"):
            return None
        if kept.get("path") != self.request.get_full_path():
            return None
        del session[KEPT_KEY]
        fresh = _now() - kept.get("at", 0) <= KEEP_SECONDS
        if not fresh or kept.get("user") != session.get(SESSION_KEY):
            return None
        return {"data": kept["data"], "message": RESTORED}


def idle_session(request) -> dict:
    """Context processor: ``idle_session`` for the pages (the warning, the kept input)."""
    if getattr(request, "session", None) is None:
        return {}
    return {"idle_session": IdleSession(request)}


def no_activity(view):
    """A view whose requests do not move the session's expiry on (the page's own checks)."""
    view.session_activity = False
    return view


def _json_seconds_left(request, status=200) -> JsonResponse:
    left = IdleSession(request).seconds_left if status == 200 else 0
    return JsonResponse({"seconds_left": left, "warn_seconds": warn_before()}, status=status)


@no_activity
@require_GET
def status(request):
    """How many seconds the session has left (401 when it has ended); no activity itself."""
    if request.session.get(SESSION_KEY) is None:
        return _json_seconds_left(request, status=401)
    return _json_seconds_left(request)


@require_POST
def keep_alive(request):
    """ "Stay signed in": the session's expiry moves on now (CSRF-protected, like any POST)."""
    if request.session.get(SESSION_KEY) is None:
        return _json_seconds_left(request, status=401)
    request.session[ACTIVE_KEY] = _now()  # modified: saved with a new expiry and cookie
    return _json_seconds_left(request)


def _signed_in_as(request) -> str | None:
    try:
        return request.get_signed_cookie(WHO_COOKIE, default=None, salt=WHO_SALT)
    except BadSignature:
        return None


def _sent_to_login(response) -> bool:
    if response.status_code not in (301, 302, 303) or not response.has_header("Location"):
        return False
    return urlsplit(response["Location"]).path == resolve_url(settings.LOGIN_URL)


def _keepable(name: str) -> bool:
    return name not in NOT_KEPT_NAMES and not NOT_KEPT.search(name)


def _keep_expired_post(request) -> None:
    """A form posted after its session ended (sent to the login page instead of its view):
    keep the input for the user of that session, and say so on the login page."""
    user_id = _signed_in_as(request)
    if user_id is None and settings.SESSION_COOKIE_NAME not in request.COOKIES:
        return  # never signed in on this browser: an ordinary visit to the login page
    minutes = _minutes(idle_seconds())
    data = {name: values for name, values in request.POST.lists() if _keepable(name)}
    if user_id is None or not data or len(json.dumps(data)) > MAX_KEPT_CHARS:
        messages.warning(request, EXPIRED.format(minutes=minutes))
        return
    request.session[KEPT_KEY] = {
        "user": user_id,
        "path": request.get_full_path(),
        "at": _now(),
        "data": data,
    }
    messages.warning(request, EXPIRED_KEPT.format(minutes=minutes))


class IdleSessionMiddleware:
    """After ``SessionMiddleware`` and ``MessageMiddleware`` in ``MIDDLEWARE``: their response
    phases come after this one's, so they save the session and store the login page's message."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is None:
            return self.get_response(request)
        before = session.get(SESSION_KEY)
        response = self.get_response(request)
        after = session.get(SESSION_KEY)
        if after is not None:
            if session.modified:  # saved now, so its expiry moves on: the page must know
                session[ACTIVE_KEY] = _now()
            if _signed_in_as(request) != after:
                response.set_signed_cookie(
                    WHO_COOKIE,
                    after,
                    salt=WHO_SALT,
                    httponly=True,
                    samesite="Lax",
                    secure=settings.SESSION_COOKIE_SECURE,
                )
        elif before is not None:  # logged out: no one's input is kept on this browser
            response.delete_cookie(WHO_COOKIE, samesite="Lax")
        elif request.method == "POST" and _sent_to_login(response):
            _keep_expired_post(request)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        """Activity moves the expiry on (a save, at most every ``touch_every()`` seconds)."""
        session = getattr(request, "session", None)
        if session is None or not getattr(view_func, "session_activity", True):
            return None
        if session.get(SESSION_KEY) is not None:
            now = _now()
            if now - session.get(ACTIVE_KEY, 0) >= touch_every():
                session[ACTIVE_KEY] = now  # modified: saved, with a new expiry and cookie
        return None


def end_sessions(user, *, request=None) -> int:
    """Delete every stored session of ``user`` (its account was locked or deactivated): each of
    its browsers is logged out at its next request, and the session stays dead whatever happens to
    the account after (an unlock or a reactivation revives none). ``request``'s own session, when
    it is one of them, is flushed (a new, empty one; deleting it under the request would make the
    response fail to save it). Returns how many were ended.

    Sessions are kept in the database (``SESSION_ENGINE``: ``db`` or ``cached_db``), which names
    no user: each unexpired one is decoded. A lockout or a deactivation is rare; this is not on
    any request's path otherwise."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    user_id = str(user.pk)
    unexpired = store.get_model_class().objects.filter(expire_date__gt=timezone.now())
    keys = [
        session.session_key
        for session in unexpired.iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == user_id
    ]
    current = getattr(request, "session", None)
    for key in keys:
        if current is not None and current.session_key == key:
            current.flush()
        else:
            store(session_key=key).delete()  # the cache's copy too (cached_db)
    return len(keys)
