"""A NUL character (``%00``) in an address or a query string is a 400 with a sentence, never a
500 (PostgreSQL text cannot hold one): every query and path parameter of every API operation
of the OpenAPI schema, and the web pages' search and paths (issue 20, item 8)."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .builders import PASSWORD

pytestmark = pytest.mark.django_db

# A value of each required parameter the API accepts (the deletions feed's "since").
VALID = {"string": "2000-01-01T00:00:00Z"}


@pytest.fixture
def api_client(data_manager):
    cache.clear()  # the throttles count in the cache
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=data_manager).key}")
    yield client
    cache.clear()


def operations(client) -> list[tuple[str, list[dict]]]:
    """(path template, parameters) of every GET operation of the API's OpenAPI schema."""
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    return [
        (route, operation["get"].get("parameters", []))
        for route, operation in schema["paths"].items()
        if "get" in operation
    ]


def url_of(route: str, parameters: list[dict], path_value: str | None = None) -> str:
    """The route with each path parameter filled (``path_value``, or a key that may not exist:
    a NUL must be refused whether or not the record exists)."""
    for parameter in parameters:
        if parameter["in"] == "path":
            route = route.replace("{" + parameter["name"] + "}", path_value or "101-0001")
    return route


def required_query(parameters: list[dict], but: str = "") -> dict[str, str]:
    return {
        p["name"]: VALID[p["schema"]["type"]]
        for p in parameters
        if p["in"] == "query" and p.get("required") and p["name"] != but
    }


def refusal(response) -> str:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/json"
    [(key, sentence)] = response.json().items()
    assert key == "detail"
    assert "NUL" in sentence and sentence.endswith(".") and len(sentence.split()) >= 8
    return sentence


def test_every_query_parameter_of_the_api_refuses_a_nul_with_a_sentence(api_client, subject):
    checked = set()
    for route, parameters in operations(api_client):
        url = url_of(route, parameters)
        for parameter in (p for p in parameters if p["in"] == "query"):
            name = parameter["name"]
            for value in ("\x00", "a\x00b"):
                response = api_client.get(url, {**required_query(parameters, name), name: value})
                assert f"parameter {name} " in refusal(response), (route, name)
            checked.add((route, name))
    # The examples, among every filter the schema lists.
    for route, name in [
        ("/api/v1/adverse-events/", "subject"),
        ("/api/v1/adverse-events/", "meddra_code"),
        ("/api/v1/adverse-events/", "site"),
        ("/api/v1/adverse-events/", "verbatim_term"),
        ("/api/v1/queries/", "check_code"),
        ("/api/v1/audit-trail/", "subject"),
        ("/api/v1/subjects/{subject_identifier}/", "format"),
    ]:
        assert (route, name) in checked
    assert len(checked) > 300


def test_every_path_parameter_of_the_api_refuses_a_nul_with_a_sentence(api_client, subject):
    routes = 0
    for route, parameters in operations(api_client):
        if any(p["in"] == "path" for p in parameters):
            for value in ("%00", "101-0001%00", "1%00"):
                url = url_of(route, parameters, value)
                response = api_client.get(url, required_query(parameters))
                assert "address" in refusal(response), url
            routes += 1
    assert routes >= 19


def test_a_nul_in_a_parameter_name_is_refused(api_client):
    response = api_client.get("/api/v1/subjects/", {"sub\x00ject": "101-0001"})
    assert "parameter name" in refusal(response)


def test_the_subject_search_and_pages_refuse_a_nul_with_the_sites_error_page(
    client, coordinator, subject
):
    assert client.login(username=coordinator.username, password=PASSWORD)
    identifier = subject.subject_identifier
    for url, data, where in [
        ("/subjects/", {"q": "\x00"}, "parameter q"),
        ("/subjects/", {"q": identifier + "\x00"}, "parameter q"),
        ("/subjects/%00/", {}, "address"),
        (f"/subjects/{identifier}%00/", {}, "address"),
        (f"/subjects/{identifier}/edit/%00", {}, "address"),
    ]:
        response = client.get(url, data)
        assert response.status_code == 400, (url, response.status_code)
        page = response.content.decode()
        assert "<h1>This request could not be understood</h1>" in page
        text = re.search(r'<div class="card">\s*<p>(.*?)</p>', page, re.S).group(1)
        assert where in text and "NUL" in text, text
        assert coordinator.username in page  # the site's page, with who is logged in
    # The same search without the NUL finds the subject.
    assert identifier in client.get("/subjects/", {"q": identifier}).content.decode()


def test_a_cookie_holding_a_nul_is_no_cookie_not_a_500(client, coordinator):
    """A quoted cookie may spell a NUL (``"abcdefgh\\000"``): the session key would reach the
    database. The cookie is forgotten: the visitor has no session (the login page, the API's
    401), as with any unknown key."""
    client.raise_request_exception = False
    client.cookies["sessionid"] = "abcdefgh\x00"
    client.cookies["csrftoken"] = "x\x00"
    assert 'sessionid="abcdefgh\\000"' in client.cookies.output()  # as a browser would send it
    response = client.get("/subjects/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert client.get("/api/v1/subjects/").status_code in (401, 403)
    del client.cookies["sessionid"]  # the test client would look the key up itself
    assert client.login(username=coordinator.username, password=PASSWORD)
    assert client.get("/subjects/").status_code == 200
