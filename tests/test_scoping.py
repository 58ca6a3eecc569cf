"""Site scoping across every endpoint: a site user never sees or changes another site's data.

The web routes, the API endpoints and the admin pages are enumerated from the URL configuration
and the admin registry, so an endpoint added later is covered without touching this file.
"""

import re

import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events.models import AdverseEvent, CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from randomization.arms import DRUGS_OF_ARM
from randomization.selectors import arm_of

from .builders import PASSWORD, make_randomized_subject, make_site, make_user, site_today

pytestmark = pytest.mark.django_db


def routes(patterns=None, prefix=""):
    """Every concrete route of the project: (route text, pattern)."""
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            yield from routes(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


@pytest.fixture
def foreign(other_site):
    """A randomized subject of site 202 with an adverse event: the data others must not see."""
    load_starter_terms()
    subject = make_randomized_subject(other_site)
    ae = record_adverse_event(
        subject,
        user=make_user(Role.SITE_STAFF, other_site),
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality={
            drug: {"causality": "possible", "action_taken": "not_changed"}
            for drug in DRUGS_OF_ARM[arm_of(subject)]
        },
    )
    return subject, ae


def subject_routes():
    found = [r for r, _ in routes() if "<str:identifier>" in r]
    assert len(found) >= 10  # subjects, eligibility, randomization, adverse events
    return found


@pytest.mark.parametrize("role", [Role.SITE_STAFF, Role.INVESTIGATOR, Role.MONITOR])
def test_no_page_of_another_sites_subject_opens(client, site, foreign, role):
    subject, ae = foreign
    user = make_user(role, site)
    assert client.login(username=user.username, password=PASSWORD)
    for route in subject_routes():
        path = "/" + route.replace("<str:identifier>", subject.subject_identifier).replace(
            "<int:number>", str(ae.ae_number)
        )
        for method in (client.get, client.post):
            response = method(path, {"reason": "probe", "password": PASSWORD})
            assert response.status_code == 404, f"{method.__name__.upper()} {path}"
    assert AdverseEvent.objects.get(pk=ae.pk).history.count() == ae.history.count()
    listing = client.get(reverse("subjects:list")).text
    assert subject.subject_identifier not in listing
    sae_page = client.get("/adverse-events/sae-due/")
    assert subject.subject_identifier not in sae_page.text


def api_list_routes():
    found = []
    for route, _ in routes():
        if route.startswith("api/v1/^") and route.endswith("/$") and "(?P" not in route:
            found.append("/api/v1/" + re.sub(r"[\^$]", "", route.removeprefix("api/v1/")))
    assert {"/api/v1/subjects/", "/api/v1/adverse-events/", "/api/v1/allocations/"} <= set(found)
    return found


def test_api_lists_hold_only_the_monitors_sites(site, foreign):
    subject, ae = foreign
    monitor = make_user(Role.MONITOR, site)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=monitor).key}")
    required = {"/api/v1/deletions/": {"since": "2000-01-01T00:00:00Z"}}
    for path in api_list_routes():
        for query in ({}, {"format": "csv"}):
            response = client.get(path, {**required.get(path, {}), **query})
            # a report (the balance report) has no CSV: 404 for format=csv
            assert response.status_code in ((200, 403, 404) if query else (200, 403)), path
            content = (
                b"".join(response.streaming_content) if response.streaming else response.content
            )
            assert subject.subject_identifier not in content.decode(), path
    for path in (
        f"/api/v1/subjects/{subject.subject_identifier}/",
        f"/api/v1/eligibility/{subject.subject_identifier}/",
        f"/api/v1/allocations/{subject.subject_identifier}/",
        f"/api/v1/adverse-events/{ae.pk}/",
        f"/api/v1/sites/{subject.site.code}/",
    ):
        assert client.get(path).status_code == 404, path


def scoped_admins():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if hasattr(model, "site_lookup")
    ]


def _force_staff(user):
    """As if someone set "staff status" by hand: the admin must still keep the user out."""
    type(user).objects.filter(pk=user.pk).update(is_staff=True)


def test_admin_pages_hold_nothing_for_site_users(client, site, foreign):
    """Site users work in the site app: every scoped admin page (list, change, history) sends
    them to the admin login, even with "staff status" forced on."""
    subject, ae = foreign
    coordinator = make_user(Role.SITE_STAFF, site)
    _force_staff(coordinator)
    assert client.login(username=coordinator.username, password=PASSWORD)
    foreign_objects = {
        "subjects.subject": subject,
        "adverse_events.adverseevent": ae,
        "randomization.allocation": subject.allocation,
        "eligibility.eligibilityassessment": subject.eligibility,
        "subjects.site": subject.site,
    }
    login_url = reverse("admin:login")
    checked = 0
    for model, _ in scoped_admins():
        label = model._meta.label_lower
        info = (model._meta.app_label, model._meta.model_name)
        listing = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        assert listing.status_code == 302 and listing["Location"].startswith(login_url), label
        assert subject.subject_identifier not in listing.text, label
        obj = foreign_objects.get(label)
        if obj is None:
            continue
        for name in ("change", "history"):
            response = client.get(reverse(f"admin:{info[0]}_{info[1]}_{name}", args=[obj.pk]))
            assert response.status_code == 302, f"{label} {name}"
            assert response["Location"].startswith(login_url), f"{label} {name}"
        checked += 1
    assert checked == len(foreign_objects)


@pytest.mark.parametrize("role", [Role.SITE_STAFF, Role.MONITOR])
def test_admin_changelists_refuse_site_users_even_of_their_own_sites(client, site, foreign, role):
    """No changelist (and so no "By site" filter) is shown to a site user, own sites included."""
    subject, _ = foreign
    third = make_site("303")
    user = make_user(role, site, third)
    _force_staff(user)
    own = [make_randomized_subject(s) for s in (site, third)]
    assert client.login(username=user.username, password=PASSWORD)
    checked = 0
    for model, _ in scoped_admins():
        info = (model._meta.app_label, model._meta.model_name)
        listing = client.get(reverse(f"admin:{info[0]}_{info[1]}_changelist"))
        assert listing.status_code == 302, model._meta.label_lower
        assert listing["Location"].startswith(reverse("admin:login"))
        assert str(third) not in listing.text and own[0].subject_identifier not in listing.text
        checked += 1
    assert checked >= 3
