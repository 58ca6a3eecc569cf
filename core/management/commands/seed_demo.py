import argparse
import random

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.demo import BULK_FROM, DemoContext, demo_today, run_seeders
from core.errors import DomainError


def credentials_file():
    return settings.VAR_DIR / "demo_credentials.txt"


class Command(BaseCommand):
    help = (
        "Create a demo study: sites, a user of every role, and subjects at every stage. The users "
        "get demo passwords (printed) only with --demo-passwords; without it they have none (set "
        "each with manage.py changepassword). Refuses to run on a database that already has users."
    )

    def add_arguments(self, parser):
        parser.add_argument("--subjects", type=int, default=24, help="subjects to create (24)")
        parser.add_argument("--seed", type=int, default=20201001, help="random seed for the demo")
        parser.add_argument(
            "--demo-passwords",
            action="store_true",
            help="give every demo user a demo password (random, or --password) and print them: "
            "for a demonstration only; refused with EDC_PRODUCTION=1",
        )
        parser.add_argument(
            "--password",
            help="with --demo-passwords: one password for every demo user (checked against "
            "AUTH_PASSWORD_VALIDATORS)",
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

    def handle(
        self, *args, subjects, seed, password, demo_passwords, skip_if_seeded, bulk, **options
    ):
        if subjects < 0 or subjects > 100_000:
            raise CommandError("--subjects must be between 0 and 100000.")
        self._check_password_options(password, demo_passwords)
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
            today=demo_today(),
            write=self._write,
            password=password,
            bulk=subjects >= BULK_FROM if bulk is None else bulk,
        )
        self.ctx = ctx  # what a benchmark reads after the command (the time of each step)
        try:
            with transaction.atomic():
                run_seeders(ctx)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        if demo_passwords:
            self._print_demo_passwords(ctx)
        else:
            self._remove_passwords(ctx)

    def _check_password_options(self, password, demo_passwords) -> None:
        if password is not None and not demo_passwords:
            raise CommandError("--password gives demo passwords: add --demo-passwords.")
        if demo_passwords and settings.PRODUCTION:
            raise CommandError(
                "--demo-passwords is refused in production (EDC_PRODUCTION=1): demo accounts "
                "with printed passwords have no place there."
            )
        if password is not None:
            try:
                password_validation.validate_password(password)
            except ValidationError as exc:
                raise CommandError("--password: " + " ".join(exc.messages)) from exc

    def _print_demo_passwords(self, ctx) -> None:
        self.stdout.write(
            self.style.SUCCESS(f"\nDemo study ready in {ctx.elapsed:.0f} s. Log in with:")
        )
        self.stdout.write(
            self.style.WARNING(
                "DEMO PASSWORDS, for this demonstration only: never use them for real accounts."
            )
        )
        width = max(len(c[0]) for c in ctx.credentials)
        lines = [
            f"  {username:<{width}}  {pw}  ({role}; sites: {sites})"
            for username, role, sites, pw in ctx.credentials
        ]
        self.stdout.write("\n".join(lines))
        path = credentials_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("DEMO PASSWORDS (demonstration only)\n" + "\n".join(lines) + "\n")
        path.chmod(0o600)
        self.stdout.write(f"(also written to {path})")

    def _remove_passwords(self, ctx) -> None:
        """Without --demo-passwords no account keeps the password it was seeded with (the
        investigators' signatures needed one): each is set by an administrator, checked against
        AUTH_PASSWORD_VALIDATORS (manage.py changepassword <username>)."""
        User = get_user_model()
        usernames = [username for username, *_ in ctx.credentials]
        for user in User.objects.filter(username__in=usernames):
            user.set_unusable_password()
            user.save(update_fields=["password"])
        self.stdout.write(
            self.style.SUCCESS(f"\nDemo study ready in {ctx.elapsed:.0f} s.")
            + f"\nUsers (no password set): {', '.join(usernames)}.\n"
            "Set one with: manage.py changepassword <username>; or run seed_demo on an empty "
            "database with --demo-passwords for printed demo passwords."
        )

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()  # progress lines show at once, on a terminal or through a pipe
