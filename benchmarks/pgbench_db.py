"""What every PostgreSQL benchmark here shares: a throwaway database beside DATABASE_URL's, and
Django set up on it (the benchmarks are scripts: ``import pgbench_db`` from this folder)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def bench_database(url: str, suffix: str) -> tuple[str, str]:
    """(admin URL on the 'postgres' database, URL of the throwaway ``<name>_<suffix>``)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit("Set DATABASE_URL=postgres://... : the benchmark measures PostgreSQL.")
    name = f"{parsed.path.lstrip('/') or 'edc'}_{suffix}"
    return urlunparse(parsed._replace(path="/postgres")), urlunparse(
        parsed._replace(path=f"/{name}")
    )


def recreate(admin_url: str, bench_url: str, *, drop_only: bool = False) -> None:
    import psycopg

    name = urlparse(bench_url).path.lstrip("/")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(bench_url: str) -> None:
    os.environ["DATABASE_URL"] = bench_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "edc.settings")
    import django

    django.setup()
    from django.conf import settings

    # Demo and test users sign with a password: a fast hasher keeps the set-up short (not
    # measured).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
