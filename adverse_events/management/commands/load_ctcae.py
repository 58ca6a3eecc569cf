import time

from django.core.management.base import BaseCommand, CommandError

from adverse_events.ctcae import CtcaeFileError, load_ctcae
from core.commands import named_user


class Command(BaseCommand):
    help = (
        "Load the CTCAE v5.0 dictionary from NCI's workbook (.xlsx, sheet 'CTCAE v5.0 Clean "
        "Copy') or the cleaned .csv. Idempotent: an upsert keyed on the MedDRA code. A malformed "
        "or incomplete file is refused and nothing is loaded."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CTCAE_v5.0.xlsx or ctcae_v5.csv")
        parser.add_argument(
            "--user", help="username recorded in the audit trail (default: none, i.e. system)"
        )

    def handle(self, *args, path, user=None, **options):
        actor = named_user(user) if user else None
        started = time.monotonic()
        try:
            result = load_ctcae(path, user=actor)
        except CtcaeFileError as exc:
            raise CommandError(str(exc)) from exc
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(f"{result.summary()} ({elapsed:.1f} s)"))
