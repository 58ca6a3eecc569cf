"""The Django admin, the data managers' tool: site users kept out, subject data read-only, a reason
for every change, read-only history."""

import pytest
from django.urls import reverse

from core.roles import Role
from subjects.models import Subject

from .builders import PASSWORD, make_subject, make_user

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def statistician(db):
    return make_user(Role.STATISTICIAN, username="stats", is_staff=True)


def change_url(subject):
    return reverse("admin:subjects_subject_change", args=[subject.pk])


def test_site_users_are_refused_by_the_subject_admin(client, subject, coordinator, investigator):
    """Site staff and investigators work in the site app: the admin sends them to its login."""
    urls = [
        reverse("admin:subjects_subject_changelist"),
        change_url(subject),
        reverse("admin:subjects_subject_history", args=[subject.pk]),
        reverse("admin:subjects_subject_add"),
    ]
    for user in (coordinator, investigator):
        login(client, user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 302, url
            assert response["Location"].startswith(reverse("admin:login")), url
            assert subject.subject_identifier not in response.text
        client.post(change_url(subject), {"initials": "HX", "change_reason": "x"})
    assert Subject.objects.get(pk=subject.pk).initials == ""
    assert Subject.objects.count() == 1


def change_form_data(subject, **overrides):
    data = {
        "screening_number": subject.screening_number,
        "screening_date": subject.screening_date.isoformat(),
        "initials": subject.initials,
        "date_of_birth": subject.date_of_birth.isoformat(),
        "age_at_screening": "",
        "sex": subject.sex,
    }
    return {**data, **overrides}


def test_admin_change_requires_a_reason(client, site, data_manager):
    login(client, data_manager)
    url = reverse("admin:subjects_site_change", args=[site.pk])
    data = {"code": site.code, "name": "Renamed", "country": "China", "active": "on"}
    data["time_zone"] = "Asia/Shanghai"
    response = client.post(url, data)
    assert response.status_code == 200
    assert "This field is required" in response.text
    site.refresh_from_db()
    assert site.name != "Renamed"
    response = client.post(url, {**data, "change_reason": "Late entry"})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.name == "Renamed"
    assert site.history.first().history_change_reason == "Late entry"
    assert site.history.first().history_user == data_manager


def test_the_subject_admin_offers_no_add_or_change_form_to_anyone(
    client, subject, data_manager, django_user_model
):
    """Subjects are registered and changed on the site's pages; the admin shows them read-only."""
    superuser = django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)
    for user in (data_manager, superuser):
        login(client, user)
        response = client.get(change_url(subject))
        assert response.status_code == 200
        assert 'name="initials"' not in response.text
        assert 'name="change_reason"' not in response.text
        assert client.get(reverse("admin:subjects_subject_add")).status_code == 403
        response = client.post(
            change_url(subject), change_form_data(subject, initials="AB", change_reason="x")
        )
        assert response.status_code == 403
    assert Subject.objects.get(pk=subject.pk).initials == ""


def test_history_cannot_be_changed_from_the_admin(client, subject, data_manager, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", "r@example.org", PASSWORD)
    version = subject.history.last()
    url = reverse("admin:subjects_subject_simple_history", args=[subject.pk, version.pk])
    for user in (data_manager, superuser):
        login(client, user)
        assert client.get(url).status_code == 200
        response = client.post(url, change_form_data(subject, change_reason="revert"))
        assert response.status_code == 403
    assert subject.history.count() == 2
    from django.contrib import admin

    registered = {m._meta.label for m in admin.site._registry}
    assert not any(label.split(".")[1].startswith("Historical") for label in registered)


def test_data_manager_sees_all_sites_but_cannot_edit_clinical_data(
    client, subject, other_site, data_manager
):
    foreign = make_subject(other_site)
    login(client, data_manager)
    listing = client.get(reverse("admin:subjects_subject_changelist")).text
    assert subject.subject_identifier in listing and foreign.subject_identifier in listing
    response = client.post(
        change_url(subject), change_form_data(subject, initials="DM", change_reason="x")
    )
    assert response.status_code == 403
    assert Subject.objects.get(pk=subject.pk).initials == ""


def test_admin_filters_by_site_and_status_and_searches_identifier(client, subject, data_manager):
    login(client, data_manager)
    url = reverse("admin:subjects_subject_changelist")
    assert subject.subject_identifier in client.get(url, {"q": "101-0001"}).text
    assert subject.subject_identifier not in client.get(url, {"status__exact": "died"}).text
    assert subject.subject_identifier in client.get(url, {"site__id__exact": subject.site_id}).text


def test_statistician_does_not_see_initials_or_date_of_birth_in_the_admin(
    client, subject, statistician, coordinator
):
    """The sponsor's people work on pseudonymized data; of them, the statistician uses the admin."""
    from subjects import services as subject_services

    subject_services.update_demographics(
        subject, user=coordinator, reason="Late entry", initials="Q-XZ"
    )
    login(client, statistician)
    response = client.get(change_url(subject))
    assert response.status_code == 200
    assert subject.subject_identifier in response.text
    assert "Q-XZ" not in response.text and "1965-05-17" not in response.text
    assert 'name="initials"' not in response.text
    changelist = reverse("admin:subjects_subject_changelist")
    response = client.get(changelist, {"date_of_birth__year": "1965"})
    assert response.status_code == 400  # no filtering by a direct identifier either


def test_a_sites_code_cannot_be_changed_in_the_admin(client, subject, site, data_manager):
    """The code is in the identifiers of the site's subjects (101-0001), which never change."""
    login(client, data_manager)
    url = reverse("admin:subjects_site_change", args=[site.pk])
    data = {"code": "909", "name": "Renamed", "country": "China", "active": "on"}
    data["time_zone"] = "Asia/Shanghai"
    response = client.post(url, {**data, "change_reason": "Rename"})
    assert response.status_code == 302
    site.refresh_from_db()
    assert (site.code, site.name) == ("101", "Renamed")
    assert subject.subject_identifier.startswith(f"{site.code}-")
