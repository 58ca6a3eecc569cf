import argparse
import random

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from core.demo import BULK_FROM, DemoContext, run_seeders
from core.errors import DomainError


def credentials_file():
    return settings.VAR_DIR / "demo_credentials.txt"


class Command(BaseCommand):
    help = (
        "Create a demo study: sites, a user of every role (credentials printed), and subjects "
        "at every stage. Refuses to run on a database that already has users."
    )

    def add_arguments(self, parser):
        parser.add_argument("--subjects", type=int, default=24, help="subjects to create (24)")
        parser.add_argument("--seed", type=int, default=20201001, help="random seed for the demo")
        parser.add_argument(
            "--password", help="one password for every demo user (default: random, printed)"
        )
        parser.add_argument(
            "--skip-if-seeded",
            action="store_true",
            help="exit quietly (0) when the database already has users",
        )
        parser.add_argument(
            "--bulk",
            action=argparse.BooleanOptionalAction,
            default=None,
            help=f"write the study in bulk (default: from {BULK_FROM} subjects; a large study "
            "in minutes) or through the services one record at a time (--no-bulk)",
        )

    def handle(self, *args, subjects, seed, password, skip_if_seeded, bulk, **options):
        if subjects < 0 or subjects > 100_000:
            raise CommandError("--subjects must be between 0 and 100000.")
        if get_user_model().objects.exists():
            if skip_if_seeded:
                self.stdout.write(
                    f"Demo data already present; the credentials are in {credentials_file()}."
                )
                return
            raise CommandError(
                "This database already has users: seed_demo only fills an empty database "
                "(delete the SQLite file in var/ or use a new database)."
            )
        ctx = DemoContext(
            n_subjects=subjects,
            rng=random.Random(seed),
            today=timezone.localdate(),
            write=self._write,
            password=password,
            bulk=subjects >= BULK_FROM if bulk is None else bulk,
        )
        try:
            with transaction.atomic():
                run_seeders(ctx)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"\nDemo study ready in {ctx.elapsed:.0f} s. Log in with:")
        )
        width = max(len(c[0]) for c in ctx.credentials)
        lines = [
            f"  {username:<{width}}  {pw}  ({role}; sites: {sites})"
            for username, role, sites, pw in ctx.credentials
        ]
        self.stdout.write("\n".join(lines))
        path = credentials_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)
        self.stdout.write(f"(also written to {path})")

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()  # progress lines show at once, on a terminal or through a pipe
