"""Brute-force protection (issue 12, defect 4): repeated wrong passwords lock the account at the
site login, the admin login and the e-signature prompt, together; the lockout is logged, says so
on the page, and a data manager unlocks it with a reason."""

from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from accounts import lockout
from accounts.models import AuthEvent
from core.errors import AccessDenied, ReasonRequired
from core.roles import Role
from eligibility.models import EligibilitySignature

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

    response = client.post(sign, {"password": PASSWORD})
    assert response.status_code == 200 and LOCKED in response.text
    assert not EligibilitySignature.objects.exists()
    assert kinds("investigator")[-7:] == [
        *[Kind.SIGNATURE_REFUSED] * 5,
        Kind.LOCKED_OUT,
        Kind.LOCKED_ATTEMPT,
    ]
    assert AuthEvent.objects.filter(kind=Kind.LOCKED_ATTEMPT).get().detail == {
        "attempt": "e-signature"
    }
    # One account, one lock: its logins are refused too.
    client.logout()
    assert LOCKED in site_login(client, "investigator", PASSWORD).text


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
