"""python manage.py run_edit_checks [--subject 101-0001 ...] [--check AE-003 ...]"""

import sys

from django.core.management.base import BaseCommand, CommandError

from core.errors import DomainError
from queries.checks import checks_named
from queries.sweep import run_edit_checks
from subjects.models import Subject


class Command(BaseCommand):
    help = (
        "Run the edit checks now (synchronously) over the whole study or some subjects, and "
        "print how many queries were opened, kept and closed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--subject",
            action="append",
            default=[],
            metavar="ID",
            help="a subject identifier (repeat for several); default: every subject",
        )
        parser.add_argument(
            "--check",
            action="append",
            default=[],
            metavar="CODE",
            help="an edit check code such as AE-003 (repeat for several); default: all",
        )

    def handle(self, *args, subject, check, **options):
        try:
            checks = checks_named(check or None)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        subject_ids = None
        if subject:
            found = dict(
                Subject.objects.filter(subject_identifier__in=subject).values_list(
                    "subject_identifier", "pk"
                )
            )
            missing = sorted(set(subject) - set(found))
            if missing:
                raise CommandError(f"No subject {', '.join(missing)} in this study.")
            subject_ids = set(found.values())
        progress = self._progress_bar(len(checks)) if self._on_a_terminal() else None
        result = run_edit_checks(
            subject_ids=subject_ids, codes=[c.code for c in checks], progress=progress
        )
        if progress:
            self.stdout.write("")
        where = f"{len(subject_ids)} subject(s)" if subject_ids else "the whole study"
        self.stdout.write(
            f"{len(checks)} edit check(s) on {where}: {result.opened} opened, "
            f"{result.kept} kept, {result.closed} closed; {result.suppressed} confirmed correct "
            "earlier and unchanged, not raised again"
            + (
                f"; {result.skipped_locked} on locked data, skipped."
                if result.skipped_locked
                else "."
            )
        )

    def _on_a_terminal(self) -> bool:
        return getattr(self.stdout, "isatty", lambda: False)() and sys.stdout.isatty()

    def _progress_bar(self, total: int):
        done = []

        def step(check):
            done.append(check.code)
            filled = round(30 * len(done) / total)
            self.stdout.write(
                f"\r[{'#' * filled}{'.' * (30 - filled)}] {len(done)}/{total} {check.code:<9}",
                ending="",
            )
            self.stdout.flush()

        return step
