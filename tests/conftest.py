"""Shared fixtures.

* ``postgres``-marked tests need real row locks: they run on PostgreSQL and are skipped on SQLite.
* ``reference_file(name)`` finds a file of EDC_REFERENCE_DATA: the test skips when the variable
  is unset and fails when it is set but the file is missing (CI can never skip silently).
* ``--schema-from-models`` (``make test-fast``): the test database is created from the models,
  not by running the migrations, and every migration is recorded as applied.
"""

from __future__ import annotations

import pytest
from django.conf import global_settings, settings
from django.core.cache import cache
from django.db import connection, connections
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.signals import post_migrate
from django.test import override_settings

from core.roles import Role

from . import builders
from .builders import reference_path


def pytest_addoption(parser):
    parser.addoption(
        "--schema-from-models",
        action="store_true",
        help="create the test database from the models (fast), not by running the migrations",
    )


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def django_db_use_migrations(request):
    """With ``--schema-from-models``, pytest-django creates the tables from the models (syncdb):
    quick, where running the migrations re-renders every related model at each operation. The
    schema is the same: ``makemigrations --check`` keeps the migrations equal to the models, and
    what they do besides (the role groups) post_migrate does too. Every migration on disk is
    then recorded as applied, so ``migrate`` and the tests that load a migration's state see
    the database as migrated."""
    if not request.config.getoption("schema_from_models"):
        return not request.config.getvalue("nomigrations")
    migrations = list(MigrationLoader(None, ignore_no_migrations=True).graph.nodes)
    created: set[str] = set()

    def record_applied(sender, using, **kwargs):
        if using in created:
            return
        created.add(using)
        recorder = MigrationRecorder(connections[using])
        recorder.ensure_schema()
        recorder.migration_qs.bulk_create(
            recorder.Migration(app=app, name=name) for app, name in migrations
        )

    post_migrate.connect(record_applied, weak=False, dispatch_uid="edc_schema_from_models")
    return False


@pytest.fixture(scope="session")
def django_db_setup(request, django_db_setup):
    """pytest-django's, then the migrations back in place after ``--schema-from-models``."""
    if request.config.getoption("schema_from_models"):
        post_migrate.disconnect(dispatch_uid="edc_schema_from_models")
        settings.MIGRATION_MODULES = global_settings.MIGRATION_MODULES


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache: the API's throttles count there (per client address,
    the test client's is always 127.0.0.1), so requests of earlier tests never reach a limit."""
    cache.clear()


@pytest.fixture
def reference_file():
    return reference_path


@pytest.fixture(scope="session", autouse=True)
def edit_checks_at_the_commit():
    """Without a broker, a save's edit checks run in the request at its commit ("inline"), not in
    a thread afterwards: what a test reads next is checked already, and a test's own transaction
    is the one they read. The background thread has tests of its own (``test_edit_checks``)."""
    with override_settings(EDIT_CHECKS_WITHOUT_BROKER="inline"):
        yield


@pytest.fixture(scope="session", autouse=True)
def fast_password_hashing():
    """Tests create many users and e-signatures: hash passwords quickly (never in production).
    Session-wide, so that the worlds built once per module get it too."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"]):
        yield


@pytest.fixture
def site(db):
    return builders.make_site("101")


@pytest.fixture
def other_site(db):
    return builders.make_site("202")


@pytest.fixture
def coordinator(site):
    return builders.make_user(Role.SITE_STAFF, site, username="coordinator")


@pytest.fixture
def investigator(site):
    return builders.make_user(Role.INVESTIGATOR, site, username="investigator")


@pytest.fixture
def other_coordinator(other_site):
    return builders.make_user(Role.SITE_STAFF, other_site, username="other")


@pytest.fixture
def data_manager(db):
    return builders.make_user(Role.DATA_MANAGER, username="dm", is_staff=True)


@pytest.fixture
def sponsor(db):
    return builders.make_user(Role.SPONSOR, username="sponsor")


@pytest.fixture
def subject(site, coordinator):
    """A consented subject in screening at site 101."""
    return builders.make_subject(site, by=coordinator)


from .builders import ctcae, ctcae_dictionary  # noqa: E402,F401  (CTCAE dictionary)
from .builders.browser import browser, page  # noqa: E402,F401  (fixtures for the browser tests)
