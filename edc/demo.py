"""The demo study built by ``manage.py seed_demo``.

Each app contributes a ``demo.seed(ctx)`` function (``"module"`` in ``SEEDERS``, or
``"module:function"`` for another function); ``SEEDERS`` runs them in order, each building
on what the earlier ones left in the shared ``DemoContext`` (sites, users by role, subjects).
All data go through the apps' services, so the demo has a real audit trail.
"""

from __future__ import annotations

import importlib
import random
import secrets
from dataclasses import dataclass, field
from datetime import date

SEEDERS = [
    "subjects.demo",
    "eligibility.demo",
    "randomization.demo",
    "adverse_events.demo",  # after "randomization.demo": AEs go to randomized subjects
    "subjects.demo:seed_follow_up",  # last: some randomized subjects move on along the path
]


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


def run_seeders(ctx: DemoContext) -> None:
    for name in SEEDERS:
        module_name, _, function = name.partition(":")
        getattr(importlib.import_module(module_name), function or "seed")(ctx)
