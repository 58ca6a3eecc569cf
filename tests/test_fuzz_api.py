"""Fuzzing the sponsor API from its own OpenAPI schema (schemathesis, in-process over WSGI).

Every operation of ``/api/v1/schema/`` gets generated requests (path and query parameters the
schema allows), a bounded number per operation, sent as the sponsor and as a data manager (token
authentication), and requests the schema does not allow: a NUL character in each parameter, and
dates at and beyond the ends of the calendar in each date-time parameter. Every answer must be
below 500, have a status code the schema documents, and conform to the schema
(``not_a_server_error``, ``status_code_conformance``, ``response_schema_conformance``); a request
the schema allows must not be refused (``positive_data_acceptance``: a 2xx, or 401/403/404).
The one parameter the schema cannot describe is a page's cursor (signed: only the next and
previous links make one): generated requests leave it out (tests/test_exports_api.py pages
with real ones; a made-up one is a 400, as the fuzzed NUL shows). Deterministic (derandomized
Hypothesis); no shrinking, so a failure is reported as found; the whole file runs in about a
minute.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)

from adverse_events.models import CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from queries import services as query_services
from randomization.arms import DRUGS_OF_ARM
from randomization.selectors import arm_of

from .builders import make_randomized_subject, make_site, make_subject, make_user, site_today
from .builders.worlds import built_once

EXAMPLES_PER_OPERATION = 8
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    positive_data_acceptance,
]
# Values outside the schema, sent to every parameter (NUL) or every date-time parameter.
NUL_VALUES = ("\x00", "a\x00b")
CALENDAR_ENDS = (
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",  # before year 1 in UTC
    "9999-12-31",
    "9999-12-31T23:59:59.999999-12:00",  # after year 9999 in UTC
    "10000-01-01",
    "0000-01-01",
)


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
    with built_once(django_db_blocker):
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


def fuzz(operation, tokens: dict[str, str]) -> None:
    """Generated requests to one operation, as each user, then the requests outside its schema
    (``outside_the_schema``); raises on the first failure."""

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
        case.query.pop("cursor", None)  # see the module's docstring
        for token in tokens.values():
            call(case, token)

    send()
    users = list(tokens.values())
    for number, case in enumerate(outside_the_schema(operation)):
        call(case, users[number % len(users)])  # each user in turn: a refusal is everyone's


def call(case, token: str) -> None:
    with transaction.atomic():
        case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)
        transaction.set_rollback(True)


def outside_the_schema(operation):
    """A NUL in each query and path parameter, in turn (the NUL values taking turns too); the
    ends of the calendar in each date-time parameter. Other parameters: the required ones, with
    a valid value."""
    query = list(operation.query)
    required = {p.name: "2000-01-01T00:00:00Z" for p in query if p.is_required}
    path = {p.name: "101-0001" for p in operation.path_parameters}
    for number, parameter in enumerate([*query, *operation.path_parameters]):
        nul = NUL_VALUES[number % len(NUL_VALUES)]
        if parameter.name in path:
            yield operation.Case(path_parameters={**path, parameter.name: nul}, query=required)
            continue
        values = [nul]
        if parameter.definition["schema"].get("format") == "date-time":
            values += CALENDAR_ENDS
        for value in values:
            yield operation.Case(path_parameters=path, query={**required, parameter.name: value})


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
def test_every_operation_documents_its_errors_and_what_its_parameters_take(study):
    """What the fuzzer relies on, said plainly: every error an operation can answer is in the
    schema with its body, and no string parameter takes "any string" (a NUL, a blank value, an
    ordering that is no column are refused)."""
    schema, _ = study
    error = schema.raw_schema["components"]["schemas"]["Error"]
    assert error["properties"]["detail"] and error["additionalProperties"]
    for result in schema.get_all_operations():
        operation = result.ok()
        responses = operation.definition.raw["responses"]
        for code in ("400", "401", "403", "404", "429"):
            body = responses[code]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/Error"}, (operation.path, code)
        for parameter in [*operation.query, *operation.path_parameters]:
            declared = parameter.definition["schema"]
            if declared["type"] == "string":
                assert {"enum", "format", "pattern"} & set(declared), (operation.path, declared)
                pattern = re.compile(declared.get("pattern", "^$"))
                for value in ("\x00", "a\x00b", "101-0001\x00", "2000-01-01T00:00:00Z\x00"):
                    assert not pattern.search(value), (operation.path, parameter.name, value)


@pytest.mark.django_db
def test_the_schema_has_every_api_operation(study):
    schema, _ = study
    paths = {op.ok().path for op in schema.get_all_operations()}
    assert {"/api/v1/subjects/", "/api/v1/adverse-events/", "/api/v1/audit-trail/"} <= paths
    assert len(paths) >= 15, paths
