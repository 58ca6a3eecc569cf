"""``flush``, refused outside DEBUG and the test runner.

Django's ``flush`` empties every table: the subjects, every history table and the security log.
On a trial database that is the audit trail wiped, so this override refuses it (a sentence and a
non-zero exit) unless ``DEBUG`` is on or the test runner set up its test environment (the test
runner flushes its own test database between transactional tests). Where it runs, it lets its
session TRUNCATE the tables the triggers protect (``core.audit.truncation_allowed``).
"""

from django.conf import settings
from django.core import mail
from django.core.management import CommandError
from django.core.management.commands import flush
from django.db import connections

from core.audit import truncation_allowed


def in_test_environment() -> bool:
    """True under the test runner: its ``setup_test_environment`` gives ``django.core.mail`` the
    ``outbox`` where tests read sent mail; a server or a shell never has it."""
    return hasattr(mail, "outbox")


def refuse_outside_debug_or_tests(command: str, what: str) -> None:
    if settings.DEBUG or in_test_environment():
        return
    raise CommandError(
        f"manage.py {command} is refused: it {what}, the audit trail and the security log "
        "included. It runs only with DEBUG on (a developer's database) or under the test runner. "
        "To start a scratch database over, drop and create it; a trial database keeps its "
        "history for good."
    )


class Command(flush.Command):
    help = (
        "Empty every table of a developer's (DEBUG) or test database. Refused otherwise: it "
        "would wipe the audit trail."
    )

    def handle(self, **options):
        refuse_outside_debug_or_tests("flush", "would empty every table")
        with truncation_allowed(connections[options["database"]]):
            return super().handle(**options)
