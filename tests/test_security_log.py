"""Logins, failed logins and changes to users, roles and memberships are audited."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.urls import reverse
from rest_framework.authtoken.models import Token

from accounts.models import AuthEvent
from core.roles import Role
from subjects import services
from subjects.models import SiteMembership

from .builders import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_login_and_failed_login_are_logged(client, coordinator):
    client.post(reverse("login"), {"username": "coordinator", "password": "wrong"})
    client.post(reverse("login"), {"username": "coordinator", "password": PASSWORD})
    events = list(
        AuthEvent.objects.filter(
            kind__in=[AuthEvent.Kind.LOGIN, AuthEvent.Kind.LOGIN_FAILED]
        ).order_by("id")
    )
    assert [(e.kind, e.username) for e in events] == [
        (AuthEvent.Kind.LOGIN_FAILED, "coordinator"),
        (AuthEvent.Kind.LOGIN, "coordinator"),
    ]
    assert events[1].ip_address == "127.0.0.1"


def test_user_changes_and_role_changes_are_logged(data_manager):
    user = make_user(username="newcomer")
    assert AuthEvent.objects.filter(kind=AuthEvent.Kind.USER_CREATED, username="newcomer").exists()
    user.is_active = False
    user.save()
    change = AuthEvent.objects.get(kind=AuthEvent.Kind.USER_CHANGED, username="newcomer")
    assert change.detail["changes"] == {"is_active": {"old": True, "new": False}}
    user.groups.add(Group.objects.get(name=Role.MONITOR))
    roles = AuthEvent.objects.get(kind=AuthEvent.Kind.ROLES_CHANGED, username="newcomer")
    assert roles.detail["groups"] == ["monitor"] and roles.detail["action"] == "add"
    user.set_password("another long passphrase")
    user.save()
    assert AuthEvent.objects.filter(
        kind=AuthEvent.Kind.PASSWORD_CHANGED, username="newcomer"
    ).exists()


def test_membership_changes_have_history_and_keep_groups_in_step(site, data_manager):
    user = make_user(username="nurse")
    membership = services.save_membership(
        SiteMembership(user=user, site=site, role=Role.SITE_STAFF), user=data_manager
    )
    assert set(user.groups.values_list("name", flat=True)) == {"site_staff"}
    membership.active = False
    services.save_membership(membership, user=data_manager, reason="Left the study team")
    assert not user.groups.exists()
    latest = membership.history.first()
    assert (latest.history_user, latest.history_change_reason) == (
        data_manager,
        "Left the study team",
    )


def test_security_log_is_read_only_in_admin(client, data_manager, coordinator):
    event = AuthEvent.objects.filter(username="coordinator").first()
    assert client.login(username="dm", password=PASSWORD)
    url = reverse("admin:accounts_authevent_change", args=[event.pk])
    assert client.get(url).status_code == 200
    client.post(url, {"username": "someone else"})
    event.refresh_from_db()
    assert event.username == "coordinator"
    assert (
        client.post(reverse("admin:accounts_authevent_delete", args=[event.pk])).status_code == 403
    )


def test_refused_e_signature_is_logged(subject, investigator):
    from eligibility.services import SignatureRefused, sign_eligibility

    from .builders import make_eligible_assessment

    assessment = make_eligible_assessment(subject, sign=False)
    with pytest.raises(SignatureRefused, match="password is not correct"):
        sign_eligibility(assessment, user=investigator, password="guess")
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.SIGNATURE_REFUSED)
    assert (event.username, event.detail) == ("investigator", {"subject": "101-0001"})


# --- Issue 20, item 4: API tokens created and deleted, by any path ------------------------------


def test_api_tokens_created_and_deleted_are_logged_in_the_admin(client, data_manager, sponsor):
    root = make_user(username="root", is_staff=True, is_superuser=True)
    client.force_login(root)
    added = client.post(reverse("admin:authtoken_tokenproxy_add"), {"user": sponsor.pk})
    assert added.status_code == 302
    token = Token.objects.get(user=sponsor)
    created = AuthEvent.objects.get(kind=AuthEvent.Kind.TOKEN_CREATED)
    assert (created.username, created.actor, created.ip_address) == ("sponsor", root, "127.0.0.1")
    assert token.key not in str(created.detail)

    delete_url = reverse("admin:authtoken_tokenproxy_delete", args=[sponsor.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=sponsor).exists()
    deleted = AuthEvent.objects.get(kind=AuthEvent.Kind.TOKEN_DELETED)
    assert (deleted.username, deleted.actor) == ("sponsor", root)


def test_api_tokens_made_by_the_command_are_logged(sponsor):
    call_command("drf_create_token", "sponsor", stdout=StringIO())
    call_command("drf_create_token", "sponsor", "--reset", stdout=StringIO())
    kinds = AuthEvent.objects.filter(username="sponsor", kind__startswith="token_").order_by("id")
    assert list(kinds.values_list("kind", flat=True)) == [
        AuthEvent.Kind.TOKEN_CREATED,
        AuthEvent.Kind.TOKEN_DELETED,
        AuthEvent.Kind.TOKEN_CREATED,
    ]
