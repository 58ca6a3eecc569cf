"""Who goes where: site staff, investigators, monitors and the sponsor work in the site app only;
the admin is the data managers' tool (data managers, statisticians, superusers).

"Staff status" follows the roles (set when memberships and role groups are saved), and the admin
asks the access module on every page and at its login whatever "staff status" says.
"""

import pytest
from django.contrib import admin
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import NoReverseMatch, get_resolver, reverse

from accounts.models import AuthEvent
from accounts.services import sync_admin_access
from core import access
from core.admin import searches_direct_identifier
from core.roles import Role
from subjects import services as subject_services
from subjects.models import SiteMembership

from .builders import PASSWORD, make_eligible_assessment, make_subject, make_user

pytestmark = pytest.mark.django_db

NOT_PAGES = {"login", "logout"}


def admin_pages(*objects) -> list[str]:
    """Every admin page: each page without arguments, each app's index, each model's list and
    add page, and the change and history pages of ``objects``."""
    _, resolver = get_resolver().namespace_dict["admin"]
    urls = set()
    for name in resolver.reverse_dict:
        if not isinstance(name, str) or name in NOT_PAGES:
            continue
        try:
            urls.add(reverse(f"admin:{name}"))
        except NoReverseMatch:
            continue  # a page of one record: below
    for model in admin.site._registry:
        urls.add(reverse("admin:app_list", args=[model._meta.app_label]))
    for obj in objects:
        info = f"admin:{obj._meta.app_label}_{obj._meta.model_name}"
        urls.add(reverse(f"{info}_change", args=[obj.pk]))
        urls.add(reverse(f"{info}_history", args=[obj.pk]))
    return sorted(urls)


def force_staff(user):
    """As if someone had set "staff status" by hand in the database."""
    type(user).objects.filter(pk=user.pk).update(is_staff=True)
    user.refresh_from_db()
    assert user.is_staff


@pytest.fixture
def monitor(site):
    return make_user(Role.MONITOR, site, username="monitor")


@pytest.fixture
def statistician(db):
    return make_user(Role.STATISTICIAN, username="stats", is_staff=True)


@pytest.fixture
def site_and_sponsor_people(coordinator, investigator, monitor, sponsor):
    return {
        "coordinator": coordinator,
        "investigator": investigator,
        "monitor": monitor,
        "sponsor": sponsor,
    }


def test_site_people_and_the_sponsor_are_refused_by_every_admin_page(
    client, subject, site, site_and_sponsor_people
):
    pages = admin_pages(subject, site)
    assert len(pages) > 30
    login_url = reverse("admin:login")
    for who, user in site_and_sponsor_people.items():
        force_staff(user)
        client.force_login(user)
        for url in pages:
            response = client.get(url)
            assert response.status_code == 302, (who, url)
            assert response["Location"].startswith(login_url), (who, url)
            assert subject.subject_identifier not in response.content.decode()
        # the login page does not pass them on to the admin either
        assert client.get(login_url).status_code == 200


def test_a_data_manager_a_statistician_and_a_superuser_get_in(
    client, subject, data_manager, statistician, django_user_model
):
    superuser = django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)
    for user in (data_manager, statistician, superuser):
        assert access.may_use_admin(user)
        client.force_login(user)
        assert client.get(reverse("admin:index")).status_code == 200
        assert client.get(reverse("admin:subjects_subject_changelist")).status_code == 200
    superuser.is_active = False
    assert not access.may_use_admin(superuser)


def test_a_coordinator_posting_to_the_admin_login_is_not_logged_in(client, coordinator):
    force_staff(coordinator)
    response = client.post(
        reverse("admin:login"),
        {"username": coordinator.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 200  # the form again, with its error
    assert "Please enter the correct username and password" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert client.get(reverse("admin:index")).status_code == 302


def test_a_data_manager_posting_to_the_admin_login_gets_in(client, data_manager):
    response = client.post(
        reverse("admin:login"),
        {"username": data_manager.username, "password": PASSWORD, "next": "/admin/"},
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200


def test_saving_a_membership_takes_staff_status_away_from_a_site_user(site, data_manager):
    user = make_user(username="newcomer", is_staff=True)
    subject_services.save_membership(
        SiteMembership(user=user, site=site, role=Role.SITE_STAFF), user=data_manager
    )
    user.refresh_from_db()
    assert not user.is_staff
    logged = AuthEvent.objects.filter(kind=AuthEvent.Kind.USER_CHANGED, username="newcomer")
    assert logged.get().detail["changes"] == {"is_staff": {"old": True, "new": False}}


def test_a_user_whose_memberships_all_end_and_who_is_a_data_manager_gets_staff_status(
    site, data_manager
):
    user = make_user(Role.MONITOR, site, username="turncoat")
    assert not user.is_staff
    membership = SiteMembership.objects.get(user=user)
    membership.active = False
    user.groups.add(Group.objects.get(name=Role.DATA_MANAGER))
    subject_services.save_membership(membership, user=data_manager, reason="Now a data manager")
    user.refresh_from_db()
    assert user.is_staff
    assert set(user.groups.values_list("name", flat=True)) == {Role.DATA_MANAGER}


def test_sync_admin_access_follows_the_groups_both_ways_and_saves_only_a_change(db):
    user = make_user(username="someone")
    logged = AuthEvent.objects.filter(kind=AuthEvent.Kind.USER_CHANGED, username="someone")
    assert not sync_admin_access(user)  # nothing to change: nothing saved, nothing logged
    assert not logged.exists()
    user.groups.add(Group.objects.get(name=Role.STATISTICIAN))
    assert sync_admin_access(user)
    user.refresh_from_db()
    assert user.is_staff
    user.groups.set([Group.objects.get(name=Role.SPONSOR)])
    assert sync_admin_access(user)
    user.refresh_from_db()
    assert not user.is_staff
    assert [e.detail["changes"]["is_staff"]["new"] for e in logged.order_by("id")] == [True, False]


def user_form(user, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": user.email,
        "is_active": "on",
        "groups": [g.pk for g in user.groups.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
        "change_reason": "Role changed by the study team",
    }
    return {**data, **overrides}


def test_changing_groups_in_the_user_admin_sets_staff_status_both_ways(client, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)
    client.force_login(superuser)
    user = make_user(username="switcher")
    url = reverse("admin:auth_user_change", args=[user.pk])
    data_manager_group = Group.objects.get(name=Role.DATA_MANAGER)
    response = client.post(url, user_form(user, groups=[data_manager_group.pk]))
    assert response.status_code == 302, response.content.decode()
    user.refresh_from_db()
    assert user.is_staff
    investigator_group = Group.objects.get(name=Role.INVESTIGATOR)
    # "staff status" is not set by hand: a posted is_staff is ignored
    response = client.post(url, user_form(user, groups=[investigator_group.pk], is_staff="on"))
    assert response.status_code == 302
    user.refresh_from_db()
    assert not user.is_staff


def test_no_admin_searches_a_direct_identifier_for_the_sponsors_people(
    client, site, data_manager, statistician
):
    """A statistician searching any admin list by a screening number finds nothing (a match would
    tell whose number it is); a data manager's search finds the subject's eligibility."""
    subject = make_subject(site, screening_number="SCR-4711")
    make_eligible_assessment(subject, sign=False)
    request = RequestFactory().get("/admin/")
    request.user = statistician
    for model_admin in admin.site._registry.values():
        searched = model_admin.get_search_fields(request)
        assert not [n for n in searched if searches_direct_identifier(n)], model_admin
    assert searches_direct_identifier("^subject__screening_number__iexact")
    url = reverse("admin:eligibility_eligibilityassessment_changelist") + "?q=SCR-4711"
    client.force_login(data_manager)
    assert subject.subject_identifier in client.get(url).content.decode()
    client.force_login(statistician)
    page = client.get(url).content.decode()
    assert subject.subject_identifier not in page and "0 results" in page
