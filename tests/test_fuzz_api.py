"""Fuzzing the sponsor API from its own OpenAPI schema (schemathesis, in-process over WSGI).

Every operation of ``/api/v1/schema/`` gets generated requests (path and query parameters,
headers: valid and invalid values), a bounded number per operation, sent as the sponsor and as a
data manager (token authentication). Every answer must be below 500 and conform to the schema
(``not_a_server_error``, ``response_schema_conformance``). Deterministic (derandomized
Hypothesis); no shrinking, so a failure is reported as found; the whole file runs in well under
a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from adverse_events.models import CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from queries import services as query_services
from randomization.arms import DRUGS_OF_ARM
from randomization.selectors import arm_of

from .builders import make_randomized_subject, make_site, make_subject, make_user, site_today

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def keep_the_test_connection():
    """The WSGI handler closes the database connection after each request (Django's test client
    turns that off; the handler called directly does not): keep it, and the test's transaction."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture(scope="module")
def study(django_db_setup, django_db_blocker, keep_the_test_connection):
    """Two sites with a randomized subject each (an AE, a query), a subject in screening; the
    sponsor's and a data manager's tokens. Built once (rolled back at the module's end)."""
    with django_db_blocker.unblock(), transaction.atomic():
        load_starter_terms()
        data_manager = make_user(Role.DATA_MANAGER, is_staff=True)
        for code in ("101", "202"):
            site = make_site(code)
            subject = make_randomized_subject(site)
            record_adverse_event(
                subject,
                user=make_user(Role.SITE_STAFF, site),
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
            query_services.raise_query(
                subject, field="initials", message="Please check.", user=data_manager
            )
            make_subject(site)
        tokens = {
            "sponsor": Token.objects.create(user=make_user(Role.SPONSOR)).key,
            "data manager": Token.objects.create(user=data_manager).key,
        }
        app = get_wsgi_application()
        schema = schemathesis.openapi.from_wsgi(
            "/api/v1/schema/", app, headers={"Authorization": f"Token {tokens['sponsor']}"}
        )
        yield schema, tokens
        transaction.set_rollback(True)


def fuzz(operation, tokens: dict[str, str]) -> None:
    """Generated requests to one operation, as each user; raises on the first failure."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case):
        for token in tokens.values():
            with transaction.atomic():
                case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
                transaction.set_rollback(True)

    send()


@pytest.mark.django_db
def test_no_5xx_and_answers_match_the_schema(study):
    schema, tokens = study
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        try:
            fuzz(operation, tokens)
        except (Exception, BaseExceptionGroup) as exc:  # every operation; failures listed together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    print(f"\nAPI fuzz: {operations} operations x {EXAMPLES_PER_OPERATION} examples x 2 users")
    assert not failures, "\n\n".join(failures)


@pytest.mark.django_db
def test_the_schema_has_every_api_operation(study):
    schema, _ = study
    paths = {op.ok().path for op in schema.get_all_operations()}
    assert {"/api/v1/subjects/", "/api/v1/adverse-events/", "/api/v1/audit-trail/"} <= paths
    assert len(paths) >= 15, paths
