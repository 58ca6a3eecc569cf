"""The sponsor API: token auth, read-only, scoped, no direct identifiers, a schema."""

import base64

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from core.audit import audited_delete
from core.roles import Role

from .builders import make_subject, make_user

pytestmark = pytest.mark.django_db


def api(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def test_sponsor_reads_subjects_without_direct_identifiers(subject, other_site, sponsor):
    make_subject(other_site)
    response = api(sponsor).get("/api/v1/subjects/")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert [r["subject_identifier"] for r in rows] == ["101-0001", "202-0001"]
    assert rows[0]["age"] == subject.age
    assert not {"initials", "date_of_birth"} & set(rows[0])


def test_filters_by_site_and_updated_since(subject, other_site, sponsor):
    make_subject(other_site)
    client = api(sponsor)
    rows = client.get("/api/v1/subjects/", {"site": "202"}).json()["results"]
    assert [r["subject_identifier"] for r in rows] == ["202-0001"]
    assert (
        client.get("/api/v1/subjects/", {"updated_since": "2999-01-01T00:00:00Z"}).json()["results"]
        == []
    )
    bad = client.get("/api/v1/subjects/", {"updated_since": "yesterday"})
    assert bad.status_code == 400 and "updated_since" in bad.json()


def test_monitor_sees_only_own_sites_and_site_staff_has_no_export_access(
    subject, site, other_site, coordinator
):
    make_subject(other_site)
    monitor = make_user(Role.MONITOR, other_site)
    rows = api(monitor).get("/api/v1/subjects/").json()["results"]
    assert [r["subject_identifier"] for r in rows] == ["202-0001"]
    assert api(monitor).get("/api/v1/subjects/101-0001/").status_code == 404
    denied = api(coordinator).get("/api/v1/subjects/")
    assert denied.status_code == 403 and "sponsor exports" in denied.json()["detail"]
    assert APIClient().get("/api/v1/subjects/").status_code == 401


def test_api_is_read_only(subject, sponsor):
    client = api(sponsor)
    assert client.post("/api/v1/subjects/", {}).status_code == 405
    assert client.delete("/api/v1/subjects/101-0001/").status_code == 405


def test_pagination_is_stable_cursor(site, coordinator, sponsor):
    for _ in range(5):
        make_subject(site, by=coordinator, consented=False)
    first = api(sponsor).get("/api/v1/subjects/", {"page_size": 2}).json()
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    second = api(sponsor).get(first["next"]).json()
    assert [r["subject_identifier"] for r in second["results"]] == ["101-0003", "101-0004"]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        base64.b64encode(b"p=abc").decode(),  # DRF's old form: not a cursor of ours
        base64.b64encode(b"o=1&p=1.5").decode(),
    ],
)
def test_a_malformed_cursor_is_a_400_with_a_sentence(subject, sponsor, cursor):
    for endpoint in ("subjects", "adverse-events", "allocations"):
        response = api(sponsor).get(f"/api/v1/{endpoint}/", {"cursor": cursor})
        assert response.status_code == 400, endpoint
        [sentence] = response.json()["cursor"]
        assert sentence.startswith("This cursor is not valid")


def test_a_cursor_past_the_last_record_is_an_empty_page(site, coordinator, sponsor):
    make_subject(site, by=coordinator, consented=False)
    last = make_subject(site, by=coordinator, consented=False)
    first = api(sponsor).get("/api/v1/subjects/", {"page_size": 1}).json()
    audited_delete(last, user=coordinator, reason="Registered twice")
    response = api(sponsor).get(first["next"])
    assert response.status_code == 200 and response.json()["results"] == []
    assert response.json()["next"] is None


def test_schema_and_token_command(sponsor, capsys):
    response = api(sponsor).get("/api/v1/schema/")
    assert response.status_code == 200 and b"/api/v1/subjects/" in response.content
    call_command("drf_create_token", sponsor.username)
    assert Token.objects.get(user=sponsor).key in capsys.readouterr().out
