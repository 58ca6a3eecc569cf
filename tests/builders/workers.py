"""What each pytest-xdist worker takes for its own (``make test`` runs the suite on several).

pytest-django already gives each worker its own test database (``test_<name>_gw0``...); the rest
is here: a Redis database per worker, so that one worker's flush or queue never touches another's.
Outside xdist (a plain ``pytest``) everything is as configured.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit


def worker_index() -> int:
    """0 for xdist's worker gw0 (and for a run without xdist), 1 for gw1, ..."""
    return int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))


def worker_redis_url(url: str) -> str:
    """``url``'s Redis database number plus the worker's index: with ``redis://host/5``, gw0
    uses database 5, gw1 database 6... (Redis has 16 unless configured otherwise)."""
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0) + worker_index()
    return urlunsplit(parts._replace(path=f"/{database}"))
