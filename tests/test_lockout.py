"""Brute-force protection (issue 12, defect 4): repeated wrong passwords lock the account at the
site login, the admin login and the e-signature prompt, together; the lockout is logged, says so
on the page, and a data manager unlocks it with a reason."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts import lockout
from accounts.forms import OwnPasswordChangeForm
from accounts.models import AuthEvent
from accounts.sessions import end_sessions
from core.errors import AccessDenied, ReasonRequired
from core.roles import Role
from edc.middleware import SESSION_ENDED
from eligibility.models import EligibilitySignature
from eligibility.services import authenticate_signer

from .builders import PASSWORD, make_eligible_assessment, make_user

pytestmark = pytest.mark.django_db
Kind = AuthEvent.Kind
LOCKED = "Too many failed attempts"


@pytest.fixture(autouse=True)
def lockout_settings(settings):
    settings.LOCKOUT_FAILURES = 5
    settings.LOCKOUT_MINUTES = 15
    return settings


def site_login(client, username, password):
    return client.post(reverse("login"), {"username": username, "password": password})


def admin_login(client, username, password):
    return client.post(
        reverse("admin:login"),
        {"username": username, "password": password, "next": reverse("admin:index")},
    )


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def kinds(username):
    return list(
        AuthEvent.objects.filter(username=username).order_by("id").values_list("kind", flat=True)
    )


@pytest.mark.parametrize("login", [site_login, admin_login], ids=["site", "admin"])
def test_wrong_passwords_then_the_right_one_is_refused(client, data_manager, login, settings):
    for attempt in range(1, settings.LOCKOUT_FAILURES + 1):
        response = login(client, "dm", f"wrong {attempt}")
        assert response.status_code == 200 and not logged_in(client)
    # The attempt that reached the limit already says so.
    assert LOCKED in response.text and "15 minutes" in response.text
    assert "ask a data manager" in response.text

    response = login(client, "dm", PASSWORD)
    assert response.status_code == 200 and not logged_in(client)
    assert LOCKED in response.text
    assert not client.login(username="dm", password=PASSWORD)  # every authenticate() path

    assert kinds("dm")[-8:] == [
        *[Kind.LOGIN_FAILED] * 5,
        Kind.LOCKED_OUT,
        Kind.LOCKED_ATTEMPT,  # the right password, refused unchecked
        Kind.LOCKED_ATTEMPT,
    ]
    lock = AuthEvent.objects.get(kind=Kind.LOCKED_OUT)
    assert lock.detail == {"failures": 5, "minutes": 15}
    assert lock.ip_address == "127.0.0.1"


def test_e_signature_prompt_counts_failures_per_user(client, subject, coordinator, investigator):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    client.force_login(investigator)
    sign = reverse("eligibility:sign", args=[subject.subject_identifier])
    for attempt in range(1, 5):
        response = client.post(sign, {"password": f"wrong {attempt}"})
        assert "password is not correct" in response.text
    response = client.post(sign, {"password": "wrong 5"})
    assert LOCKED in response.text
    # The lockout ended the session it happened in: the right password cannot sign now.
    response = client.post(sign, {"password": PASSWORD})
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert not EligibilitySignature.objects.exists()
    assert kinds("investigator")[-7:] == [
        *[Kind.SIGNATURE_REFUSED] * 5,
        Kind.LOCKED_OUT,
        Kind.SESSIONS_ENDED,
    ]
    # One account, one lock: its logins are refused too.
    assert LOCKED in site_login(client, "investigator", PASSWORD).text
    assert AuthEvent.objects.filter(kind=Kind.LOCKED_ATTEMPT).get().detail == {"attempt": "login"}


def test_a_locked_account_cannot_sign_with_the_right_password(subject, coordinator, investigator):
    for _ in range(5):
        lockout.login_failed("investigator")
    with pytest.raises(lockout.AccountLocked, match=LOCKED):
        authenticate_signer(subject, investigator, PASSWORD)
    assert AuthEvent.objects.filter(kind=Kind.LOCKED_ATTEMPT).get().detail == {
        "attempt": "e-signature"
    }


def test_failures_at_the_three_prompts_add_up(client, subject, coordinator, investigator):
    make_eligible_assessment(subject, by=coordinator, sign=False)
    client.force_login(investigator)
    sign = reverse("eligibility:sign", args=[subject.subject_identifier])
    for _ in range(3):
        client.post(sign, {"password": "guess"})
    client.logout()
    site_login(client, "investigator", "guess")
    admin_login(client, "investigator", "guess")
    assert lockout.current_lock("investigator") is not None


def test_a_successful_login_starts_the_count_again(client, coordinator):
    for _ in range(2):
        for _ in range(4):
            site_login(client, "coordinator", "wrong")
        site_login(client, "coordinator", PASSWORD)
        assert logged_in(client)
        client.logout()
    assert lockout.current_lock("coordinator") is None


def test_unknown_usernames_are_locked_the_same_way(client):
    for _ in range(5):
        response = site_login(client, "nobody-here", "guess")
    assert LOCKED in response.text  # the answer does not tell which accounts exist


def test_the_lock_ends_after_the_lockout_period(client, coordinator):
    for _ in range(5):
        site_login(client, "coordinator", "wrong")
    assert LOCKED in site_login(client, "coordinator", PASSWORD).text
    later = timezone.now() + timedelta(minutes=15, seconds=1)
    with mock.patch("django.utils.timezone.now", return_value=later):
        site_login(client, "coordinator", PASSWORD)
        assert logged_in(client)


def test_a_data_manager_unlocks_with_a_reason_in_the_admin(client, coordinator, data_manager):
    for _ in range(5):
        site_login(client, "coordinator", "wrong")
    locked_event = AuthEvent.objects.get(kind=Kind.LOCKED_OUT, username="coordinator")

    dm = client.__class__()
    dm.force_login(data_manager)
    changelist = reverse("admin:accounts_authevent_changelist")
    action = {"action": "unlock_accounts", ACTION_CHECKBOX_NAME: [locked_event.pk]}
    page = dm.post(changelist, action)
    assert page.status_code == 200
    assert "coordinator" in page.text and "Reason for unlocking" in page.text

    refused = dm.post(changelist, {**action, "post": "yes", "reason": "\u200b "})
    assert refused.status_code == 200 and lockout.current_lock("coordinator") is not None

    done = dm.post(changelist, {**action, "post": "yes", "reason": "Called the user back"})
    assert done.status_code == 302
    unlocked = AuthEvent.objects.get(kind=Kind.UNLOCKED)
    assert (unlocked.username, unlocked.actor) == ("coordinator", data_manager)
    assert unlocked.detail["reason"] == "Called the user back"

    site_login(client, "coordinator", PASSWORD)
    assert logged_in(client)


def test_only_a_data_manager_unlocks_and_never_without_a_reason(client, coordinator, investigator):
    for _ in range(5):
        site_login(client, "coordinator", "wrong")
    with pytest.raises(AccessDenied, match="data manager"):
        lockout.unlock("coordinator", by=investigator, reason="I know them")
    dm = make_user(Role.DATA_MANAGER, username="dm2")
    with pytest.raises(ReasonRequired):
        lockout.unlock("coordinator", by=dm, reason="   ")
    assert lockout.current_lock("coordinator") is not None
    assert not AuthEvent.objects.filter(kind=Kind.UNLOCKED).exists()


# --- Issue 20, item 3: the password change checks the old password through the lockout --------

NEW_PASSWORD = "a brand new passphrase 42"


def change_own_password(client, old_password):
    return client.post(
        reverse("admin:password_change"),
        {
            "old_password": old_password,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )


def test_wrong_old_passwords_are_logged_and_lock_the_account(client, data_manager):
    client.force_login(data_manager)
    for attempt in range(1, 5):
        response = change_own_password(client, f"wrong {attempt}")
        assert response.status_code == 200 and "entered incorrectly" in response.text
    response = change_own_password(client, "wrong 5")
    assert response.status_code == 200 and LOCKED in response.text
    assert kinds("dm")[-7:] == [*[Kind.PASSWORD_REFUSED] * 5, Kind.LOCKED_OUT, Kind.SESSIONS_ENDED]
    refused = AuthEvent.objects.filter(kind=Kind.PASSWORD_REFUSED).first()
    assert (refused.actor, refused.ip_address) == (data_manager, "127.0.0.1")

    # The right old password, in the session the lockout ended: no change.
    response = change_own_password(client, PASSWORD)
    assert response.status_code == 302 and reverse("admin:login") in response.url
    data_manager.refresh_from_db()
    assert data_manager.check_password(PASSWORD)
    assert not AuthEvent.objects.filter(kind=Kind.PASSWORD_CHANGED, username="dm").exists()


def test_a_locked_account_cannot_change_its_password_with_the_right_old_one(data_manager):
    for _ in range(5):
        lockout.login_failed("dm")
    form = OwnPasswordChangeForm(
        data_manager,
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert not form.is_valid()
    assert LOCKED in form.errors["old_password"][0]
    data_manager.refresh_from_db()
    assert data_manager.check_password(PASSWORD)
    assert kinds("dm")[-1] == Kind.LOCKED_ATTEMPT
    assert AuthEvent.objects.get(kind=Kind.LOCKED_ATTEMPT).detail == {"attempt": "password change"}


def test_password_change_and_login_failures_add_up(client, data_manager):
    client.force_login(data_manager)
    elsewhere = client.__class__()
    for _ in range(3):
        site_login(elsewhere, "dm", "guess")
    change_own_password(client, "guess")
    assert lockout.current_lock("dm") is None
    assert LOCKED in change_own_password(client, "guess").text
    assert lockout.current_lock("dm") is not None


def test_the_right_old_password_still_changes_it(client, data_manager):
    client.force_login(data_manager)
    response = change_own_password(client, PASSWORD)
    assert response.status_code == 302
    data_manager.refresh_from_db()
    assert data_manager.check_password(NEW_PASSWORD)
    assert kinds("dm")[-1] == Kind.PASSWORD_CHANGED


# --- Issue 20, item 4: a lockout or a deactivation ends the sessions and refuses the token -----


@pytest.fixture
def api_token(data_manager):
    cache.clear()  # the API's throttles count in the cache
    yield Token.objects.create(user=data_manager).key
    cache.clear()


def api_get(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/sites/")


def test_a_lockout_ends_the_sessions_and_refuses_the_token_until_unlocked(
    client, data_manager, api_token
):
    session = client.__class__()
    session.force_login(data_manager)
    assert session.get(reverse("admin:index")).status_code == 200
    assert api_get(api_token).status_code == 200

    for _ in range(5):
        site_login(client, "dm", "guess")  # someone else, elsewhere, guessing
    assert session.get(reverse("admin:index")).status_code == 302
    assert session.get(reverse("subjects:list")).status_code == 302
    ended = AuthEvent.objects.get(kind=Kind.SESSIONS_ENDED)
    assert ended.detail == {"sessions": 1, "why": "locked out"}

    refused = api_get(api_token)
    assert refused.status_code == 401 and LOCKED in refused.json()["detail"]
    attempt = AuthEvent.objects.filter(kind=Kind.LOCKED_ATTEMPT).latest("id")
    assert attempt.detail == {"attempt": "api token"}

    lockout.unlock("dm", by=make_user(Role.DATA_MANAGER, username="dm2"), reason="Called back")
    assert api_get(api_token).status_code == 200
    assert session.get(reverse("admin:index")).status_code == 302  # ended for good


def test_deactivation_ends_the_sessions_and_refuses_the_token(client, data_manager, api_token):
    client.force_login(data_manager)
    data_manager.is_active = False
    data_manager.save()
    ended = AuthEvent.objects.get(kind=Kind.SESSIONS_ENDED)
    assert ended.detail == {"sessions": 1, "why": "deactivated"}
    refused = api_get(api_token)
    assert refused.status_code == 401 and "inactive" in refused.json()["detail"]

    # Reactivated, the account logs in again: the old session stays ended.
    data_manager.is_active = True
    data_manager.save()
    assert client.get(reverse("admin:index")).status_code == 302
    assert api_get(api_token).status_code == 200


def test_a_request_whose_session_is_ended_while_it_runs_says_so(client, coordinator):
    """A lockout or deactivation ends the account's sessions (``end_sessions``) while one of its
    requests runs: the view may have saved, so the answer says the session ended and to check,
    never "malformed request"."""
    assert client.login(username=coordinator.username, password=PASSWORD)
    client.raise_request_exception = False
    save = SessionStore.save

    def ended_meanwhile(store, must_create=False):
        end_sessions(coordinator)  # a data manager locks the account as the request finishes
        return save(store, must_create=must_create)

    with mock.patch.object(SessionStore, "save", ended_meanwhile):
        response = client.post(reverse("session_keep_alive"))
    assert response.status_code == 400
    assert "Your session has ended" in response.content.decode()
    assert SESSION_ENDED in response.content.decode()
    assert client.get("/subjects/").status_code == 302  # logged out
