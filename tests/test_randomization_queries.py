"""The randomize POST checks everything once, under its locks: its SQL queries are counted
(transaction control aside: BEGIN/COMMIT in production, SAVEPOINT/RELEASE inside a test)."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from randomization import services
from randomization.models import Allocation
from subjects.models import Subject, SubjectStatus

from .builders import PASSWORD, ensure_active_list, make_eligible_subject

# session, user, the user's roles and memberships (one UNION), the visible subject; then in the
# transaction: the locked subject, the signature with its assessment, the locked stratum, the
# free slot, the allocation and its history row, the subject's status and its history row.
# The data lock (monitoring) adds four: whether the subject is frozen or locked, asked by the
# page and by the service (``core.access``), and the write guard of each write (``core.audit``).
# Randomization's lock_timeout (SET LOCAL, issue 12) adds one.
MAX_QUERIES = 17
TRANSACTION_CONTROL = re.compile(r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT)\b")


@pytest.mark.django_db
def test_randomize_post_issues_at_most_twelve_queries(client, site, coordinator):
    ensure_active_list()
    subject = make_eligible_subject(site, by=coordinator)
    assert client.login(username=coordinator.username, password=PASSWORD)
    url = reverse("randomization:randomize", args=[subject.subject_identifier])
    stratum = services.preview_randomization(subject, coordinator).stratum

    with CaptureQueriesContext(connection) as queries:
        response = client.post(url, {"stratum": stratum, "confirm": "on"})

    assert response.status_code == 302
    assert Subject.objects.get(pk=subject.pk).status == SubjectStatus.RANDOMIZED
    statements = [
        q["sql"] for q in queries.captured_queries if not TRANSACTION_CONTROL.match(q["sql"])
    ]
    assert len(statements) <= MAX_QUERIES, "\n".join(statements)


@pytest.mark.django_db
def test_the_service_refuses_a_stratum_that_is_no_longer_the_derived_one(site, coordinator):
    """Any caller, not only the page: the confirmed stratum is checked under the lock."""
    ensure_active_list()
    subject = make_eligible_subject(site, by=coordinator)
    derived = services.preview_randomization(subject, coordinator)
    other = "S1" if derived.stratum != "S1" else "S2"

    with pytest.raises(services.StratumChanged) as refused:
        services.randomize(subject, coordinator, confirmed_stratum=other)

    assert refused.value.stratum == derived.stratum
    assert f"now {derived.stratum}" in str(refused.value)
    assert not Allocation.objects.exists()
    assert Subject.objects.get(pk=subject.pk).status == SubjectStatus.SCREENING
    allocation = services.randomize(subject, coordinator, confirmed_stratum=derived.stratum)
    assert allocation.stratum.code == derived.stratum
