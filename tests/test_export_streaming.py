"""Streamed exports (issue 20, item 12): the COPY CSV works under ``DEBUG=1`` and gives the same
bytes as without it.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from adverse_events import services as ae_services
from adverse_events.models import CtcaeTerm
from adverse_events.starter_terms import load_starter_terms
from exports import copy_csv
from randomization.arms import Arm
from subjects import services as subject_services

from .builders import make_subject, make_subject_in_arm, site_today

pytestmark = pytest.mark.postgres


def add_study(site, coordinator) -> None:
    """Two randomized subjects with an adverse event each, one in screening, and one deleted
    (registered in error): every export has rows."""
    load_starter_terms()
    for _ in range(2):
        subject = make_subject_in_arm(Arm.B, site, by=coordinator)
        ae_services.record_adverse_event(
            subject,
            user=coordinator,
            term=CtcaeTerm.objects.get(term="Hypertension"),
            grade=2,
            onset_date=site_today(),
            ongoing=True,
            outcome="not_recovered",
            causality={"sorafenib": {"causality": "possible", "action_taken": "reduced"}},
        )
    make_subject(site, by=coordinator)
    mistake = make_subject(site, by=coordinator)
    subject_services.delete_subject(mistake, user=coordinator, reason="Registered in error")


@pytest.fixture
def study_data(site, coordinator):
    add_study(site, coordinator)


def api_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_of(user)}")
    return client


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


# --- DEBUG=1: the COPY CSV works, byte for byte as without DEBUG ---------------------------------


def csv_of(client, path, **query) -> bytes:
    response = client.get(path, {"format": "csv", **query})
    assert response.status_code == 200 and response.streaming, response
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_the_copy_csv_is_the_same_under_debug(study_data, data_manager, settings, monkeypatch):
    client = api_client(data_manager)
    pulls = [
        ("/api/v1/adverse-events/", {}),
        ("/api/v1/adverse-events/", {"site": "101", "ordering": "-grade,term"}),
        ("/api/v1/adverse-events/", {"updated_since": "2000-01-01T00:00:00Z", "grade": "2"}),
        ("/api/v1/sites/", {}),
    ]
    settings.DEBUG = False
    plain = [csv_of(client, path, **query) for path, query in pulls]
    settings.DEBUG = True  # Django's CursorDebugWrapper: its copy() takes no parameters
    with CaptureQueriesContext(connection) as queries:
        debug = [csv_of(client, path, **query) for path, query in pulls]
    assert debug == plain
    copies = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("COPY")]
    assert len(copies) == len(pulls) and "'101'" in copies[1]  # logged with its parameters
    monkeypatch.setattr(copy_csv, "ENABLED", False)  # the Python path
    assert [csv_of(client, path, **query) for path, query in pulls] == plain
    assert all(text.count(b"\n") > 1 for text in plain[:3])  # rows, not the header alone
