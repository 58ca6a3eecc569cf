"""The Django admin: scoped to the user's sites, a reason for every change, read-only history."""

import pytest
from django.urls import reverse

from subjects.models import Subject

from .builders import PASSWORD, make_subject

pytestmark = pytest.mark.django_db


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def change_url(subject):
    return reverse("admin:subjects_subject_change", args=[subject.pk])


def test_site_user_sees_only_own_site_subjects(client, subject, other_site, coordinator):
    foreign = make_subject(other_site)
    response = login(client, coordinator).get(reverse("admin:subjects_subject_changelist"))
    assert response.status_code == 200
    assert subject.subject_identifier in response.text
    assert foreign.subject_identifier not in response.text


def test_site_user_cannot_open_change_or_history_of_another_site(client, other_site, coordinator):
    foreign = make_subject(other_site)
    version = foreign.history.first()
    login(client, coordinator)
    urls = [
        change_url(foreign),
        reverse("admin:subjects_subject_history", args=[foreign.pk]),
        reverse("admin:subjects_subject_simple_history", args=[foreign.pk, version.pk]),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 404), url
        assert foreign.subject_identifier not in response.text
    response = client.post(change_url(foreign), {"initials": "HX", "change_reason": "x"})
    assert Subject.objects.get(pk=foreign.pk).initials == ""


def test_site_user_cannot_register_at_another_site_via_admin(client, other_site, coordinator):
    login(client, coordinator)
    response = client.post(
        reverse("admin:subjects_subject_add"),
        {"site": other_site.pk, "screening_number": "S1", "sex": "M", "age_at_screening": 50},
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.text
    assert not Subject.objects.filter(site=other_site).exists()


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


def test_admin_change_requires_a_reason(client, subject, coordinator):
    login(client, coordinator)
    response = client.post(change_url(subject), change_form_data(subject, initials="AB"))
    assert response.status_code == 200
    assert "This field is required" in response.text
    assert Subject.objects.get(pk=subject.pk).initials == ""
    response = client.post(
        change_url(subject), change_form_data(subject, initials="AB", change_reason="Late entry")
    )
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.initials == "AB"
    assert subject.history.first().history_change_reason == "Late entry"
    assert subject.history.first().history_user == coordinator


def test_history_cannot_be_changed_from_the_admin(client, subject, coordinator, data_manager):
    version = subject.history.last()
    url = reverse("admin:subjects_subject_simple_history", args=[subject.pk, version.pk])
    for user in (coordinator, data_manager):
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


def test_sponsor_does_not_see_initials_or_date_of_birth_in_the_admin(
    client, subject, sponsor, coordinator
):
    from subjects import services as subject_services

    subject_services.update_demographics(
        subject, user=coordinator, reason="Late entry", initials="Q-XZ"
    )
    sponsor.is_staff = True  # the demo opens the admin to every role
    sponsor.save()
    login(client, sponsor)
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


def test_site_user_registers_a_subject_in_the_admin(client, site, coordinator):
    login(client, coordinator)
    response = client.post(
        reverse("admin:subjects_subject_add"),
        {
            "site": site.pk,
            "screening_number": "A-1",
            "screening_date": "2026-01-05",
            "sex": "F",
            "age_at_screening": 58,
        },
    )
    assert response.status_code == 302
    subject = Subject.objects.get()
    assert (subject.subject_identifier, str(subject.screening_date)) == ("101-0001", "2026-01-05")
    assert subject.history.get().history_user == coordinator
