"""CTCAE dictionary fixtures (registered in tests/conftest.py).

Loading the 837 terms for every test would be slow, so ``ctcae_dictionary`` loads NCI's workbook
once per test session into the test database (outside the tests' transactions) and remembers the
result of that first load. ``ctcae`` (function scope) makes sure the terms are there for a test:
if a transactional test elsewhere has flushed the database, it loads them again inside the test's
transaction. Like every reference-data test: skipped when EDC_REFERENCE_DATA is unset, failed
when it is set but the files are missing.
"""

from __future__ import annotations

import pytest

from adverse_events.ctcae import EXPECTED_TERMS, LoadResult, load_ctcae
from adverse_events.models import CtcaeTerm

from .reference import reference_path

_first_load: dict[str, LoadResult] = {}


@pytest.fixture(scope="session")
def ctcae_dictionary(django_db_setup, django_db_blocker) -> LoadResult:
    """The result of the session's first load of CTCAE_v5.0.xlsx (committed, loaded once)."""
    path = reference_path("CTCAE_v5.0.xlsx")
    if "xlsx" not in _first_load:
        with django_db_blocker.unblock():
            _first_load["xlsx"] = load_ctcae(path)
    return _first_load["xlsx"]


@pytest.fixture
def ctcae(ctcae_dictionary, db):
    """The full dictionary is in the database for this test."""
    if CtcaeTerm.objects.count() < EXPECTED_TERMS:
        load_ctcae(reference_path("ctcae_v5.csv"))
    return CtcaeTerm.objects


def term(name: str) -> CtcaeTerm:
    return CtcaeTerm.objects.get(term=name)
