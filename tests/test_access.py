"""Every page, admin page, template and API permission asks the one access module (``core.access``).

Two proofs. (1) Users who may read a subject but not write it (a monitor, a data manager, the
sponsor, a statistician, and site staff of another site who monitor this one) get no write form
on any subject page, and a POST to any of them changes nothing. (2) With the access module's
answers replaced, the pages, the admin, the services and the API follow the replacement: nobody
answers the question on their own.

The subject pages are found by walking the URLconf, so a page added later is checked too.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core import access
from core.errors import AccessDenied
from core.roles import Role
from eligibility.models import EligibilitySignature
from subjects import services as subject_services
from subjects.models import SiteMembership, Subject

from .builders import PASSWORD, days_ago, make_eligible_assessment, make_user, write_forms

pytestmark = pytest.mark.django_db

SITE_PAGE_NAMESPACES = ("subjects", "eligibility", "randomization", "adverse_events")


def _walk(patterns, namespace="", converters=frozenset()):
    """(namespace, URL name, the names of its arguments, included prefixes' too) of each page."""
    for entry in patterns:
        found = converters | set(entry.pattern.converters)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, entry.namespace or namespace, found)
        elif isinstance(entry, URLPattern) and entry.name:
            yield namespace, entry.name, found


def subject_pages(subject, ae_number: int) -> list[str]:
    """Every site-staff page about one subject (those whose URL holds the subject identifier)."""
    values = {"identifier": subject.subject_identifier, "number": ae_number}
    urls = []
    for namespace, name, converters in _walk(get_resolver().url_patterns):
        if namespace in SITE_PAGE_NAMESPACES and "identifier" in converters:
            kwargs = {arg: values[arg] for arg in converters}
            urls.append(reverse(f"{namespace}:{name}", kwargs=kwargs))
    return urls


@pytest.fixture
def signed_subject(subject, coordinator):
    """A consented subject, signed eligible, with one adverse event."""
    load_starter_terms()
    make_eligible_assessment(subject, by=coordinator)
    record_adverse_event(
        subject,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=days_ago(0),
        ongoing=True,
        outcome="not_recovered",
    )
    return Subject.objects.get(pk=subject.pk)


def snapshot(subject) -> tuple:
    return (
        subject.history.count(),
        EligibilitySignature.history.count(),
        AdverseEvent.history.count(),
        Subject.objects.count(),
    )


def test_the_walk_finds_every_subject_page(signed_subject):
    pages = subject_pages(signed_subject, 1)
    for name in ("consent/", "edit/", "status/", "delete/", "eligibility/", "randomize/"):
        assert any(url.endswith(name) for url in pages), name
    assert any("/adverse-events/1/" in url for url in pages)
    assert len(pages) >= 14


def test_site_staff_get_write_forms(client, signed_subject, coordinator):
    """The other tests' absence of forms is meaningful: the writers do get them."""
    client.force_login(coordinator)
    with_forms = [
        url
        for url in subject_pages(signed_subject, 1)
        if write_forms(client.get(url, follow=True).content.decode())
    ]
    assert len(with_forms) >= 6, with_forms


@pytest.fixture
def readers(site, other_site, data_manager, sponsor):
    split = make_user(Role.SITE_STAFF, other_site)  # writes at 202 ...
    subject_services.save_membership(  # ... and only monitors 101
        SiteMembership(user=split, site=site, role=Role.MONITOR), user=None
    )
    return {
        "monitor": make_user(Role.MONITOR, site),
        "data manager": data_manager,
        "sponsor": sponsor,
        "statistician": make_user(Role.STATISTICIAN),
        "staff of 202 monitoring 101": split,
    }


def test_read_only_users_get_no_write_form_on_any_subject_page(client, signed_subject, readers):
    pages = subject_pages(signed_subject, 1)
    for who, user in readers.items():
        client.force_login(user)
        for url in pages:
            response = client.get(url, follow=True)
            assert response.status_code in (200, 403, 404), (who, url)
            html = response.content.decode()
            assert write_forms(html) == 0, f"{who} gets a form on {url}"


def test_a_post_by_a_read_only_user_changes_nothing(client, signed_subject, readers):
    before = snapshot(signed_subject)
    pages = subject_pages(signed_subject, 1)
    for user in readers.values():
        client.force_login(user)
        for url in pages:
            client.post(url, {"reason": "x", "password": PASSWORD, "status": "withdrawn"})
    assert snapshot(signed_subject) == before


def test_the_admin_keeps_out_a_site_user_whatever_staff_status_says(
    client, signed_subject, readers
):
    url = reverse("admin:subjects_subject_change", args=[signed_subject.pk])
    split = readers["staff of 202 monitoring 101"]
    split.is_staff = True
    split.save()
    client.force_login(split)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert signed_subject.subject_identifier not in response.content.decode()


# --- (2) replace the access module's answers: everyone follows ---------------------------------


@pytest.fixture
def nobody_writes(monkeypatch):
    for question in ("can_enter_data", "can_sign_eligibility", "can_randomize"):
        monkeypatch.setattr(access, question, lambda user, obj: False)


def test_pages_and_templates_ask_the_access_module(
    client, signed_subject, coordinator, investigator, nobody_writes
):
    pages = subject_pages(signed_subject, 1)
    for user in (coordinator, investigator):
        client.force_login(user)
        for url in pages:
            html = client.get(url, follow=True).content.decode()
            assert write_forms(html) == 0, url
        assert "Record an adverse event" not in client.get(signed_subject.get_absolute_url()).text


def test_services_ask_the_access_module(signed_subject, coordinator, nobody_writes):
    with pytest.raises(AccessDenied, match="at site 101"):
        subject_services.update_demographics(
            signed_subject, user=coordinator, reason="x", initials="AB"
        )


def test_the_admin_asks_the_access_module(
    client, signed_subject, coordinator, data_manager, monkeypatch
):
    url = reverse("admin:subjects_subject_changelist")
    client.force_login(data_manager)
    assert client.get(url).status_code == 200
    monkeypatch.setattr(access, "may_use_admin", lambda user: False)
    assert client.get(url).status_code == 302  # to the admin login
    monkeypatch.setattr(access, "may_use_admin", lambda user: True)
    coordinator.is_staff = True
    coordinator.save()
    client.force_login(coordinator)
    assert client.get(url).status_code == 200


def test_api_permissions_ask_the_access_module(signed_subject, sponsor, coordinator, monkeypatch):
    client = APIClient()
    client.force_authenticate(sponsor)
    assert client.get("/api/v1/subjects/").status_code == 200
    monkeypatch.setattr(access, "can_read_exports", lambda user: False)
    assert client.get("/api/v1/subjects/").status_code == 403
    monkeypatch.setattr(access, "can_read_exports", lambda user: True)
    client.force_authenticate(coordinator)
    assert client.get("/api/v1/subjects/").status_code == 200
