"""The demo study built by ``manage.py seed_demo``.

Each project app may have a ``demo`` module with ``seed(ctx)`` and, for what happens later in
the trial, ``seed_follow_up(ctx)``. ``run_seeders`` runs every app's ``seed`` in the order of
``INSTALLED_APPS`` (the order of the layers: subjects before eligibility before randomization
before adverse events), then every ``seed_follow_up``; each builds on what the earlier ones left in
the shared ``DemoContext`` (sites, users by role, subjects). All data go through the apps'
services, so the demo has a real audit trail.
"""

from __future__ import annotations

import importlib
import random
import secrets
from dataclasses import dataclass, field
from datetime import date
from importlib.util import find_spec

from .registry import project_app_configs

PASSES = ("seed", "seed_follow_up")


@dataclass
class DemoContext:
    n_subjects: int
    rng: random.Random
    today: date
    write: callable
    password: str | None = None
    sites: list = field(default_factory=list)
    users: dict = field(default_factory=dict)  # role -> list of users
    credentials: list = field(default_factory=list)  # (username, role, sites, password)
    subjects: list = field(default_factory=list)
    admin: object = None  # the superuser the seeders act as where no site role applies

    def new_password(self) -> str:
        return self.password or secrets.token_urlsafe(9)

    def site_user(self, role: str, site):
        """A user holding ``role`` at ``site``."""
        for user in self.users.get(role, []):
            if any(m.site_id == site.pk for m in user.site_memberships.all()):
                return user
        raise LookupError(f"no {role} at site {site.code} in the demo")


def seeders() -> list:
    """The seed functions of every project app's ``demo`` module, in the order they run."""
    modules = [
        importlib.import_module(f"{config.name}.demo")
        for config in project_app_configs()
        if find_spec(f"{config.name}.demo") is not None
    ]
    return [getattr(m, name) for name in PASSES for m in modules if hasattr(m, name)]


def run_seeders(ctx: DemoContext) -> None:
    for seed in seeders():
        seed(ctx)
