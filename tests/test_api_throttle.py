"""The API's anonymous rate applies (issue 20, item 5): requests without a token and with a wrong
one are throttled per client address, before the permission check refuses them (DRF's own
throttles run after it, so the rate never applied). A good token is never counted with them."""

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db
LIMIT = 5
SITES = "/api/v1/sites/"
SENTENCE = "Too many requests without valid credentials from your address."


@pytest.fixture(autouse=True)
def small_anonymous_rate(settings):
    cache.clear()  # the throttles count in the cache
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "10000/hour", "anon": f"{LIMIT}/hour"},
    }
    yield
    cache.clear()


def client_at(address: str, token: str | None = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=address)
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.mark.parametrize("token", [None, "0" * 40], ids=["no token", "wrong token"])
def test_unauthenticated_requests_are_throttled_per_address(token):
    client = client_at("203.0.113.7", token)
    statuses = [client.get(SITES).status_code for _ in range(LIMIT)]
    assert statuses == [401] * LIMIT
    throttled = client.get(SITES)
    assert throttled.status_code == 429
    assert throttled.json()["detail"].startswith(SENTENCE)
    assert int(throttled["Retry-After"]) > 0
    # Another address has its own count.
    assert client_at("203.0.113.8", token).get(SITES).status_code == 401


def test_wrong_tokens_and_no_token_count_together_and_a_forged_header_changes_nothing():
    for i in range(LIMIT):
        client = client_at("203.0.113.7", "0" * 40 if i % 2 else None)
        client.get(SITES, HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
    again = client_at("203.0.113.7").get(SITES, HTTP_X_FORWARDED_FOR="198.51.100.200")
    assert again.status_code == 429


def test_a_good_token_is_unaffected_by_failures(sponsor):
    key = Token.objects.create(user=sponsor).key
    for _ in range(LIMIT + 1):
        client_at("203.0.113.7", "0" * 40).get(SITES)
    assert client_at("203.0.113.7", "1" * 40).get(SITES).status_code == 429
    assert client_at("192.0.2.10", key).get(SITES).status_code == 200  # another address
    assert client_at("203.0.113.7", key).get(SITES).status_code == 200  # the same one, too
