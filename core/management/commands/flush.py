"""``flush``, refused outside DEBUG and the test runner.

Django's ``flush`` empties every table: the subjects, every history table and the security log.
On a trial database that is the audit trail wiped, so this override refuses it (a sentence and a
non-zero exit) unless ``DEBUG`` is on or the test runner set up its test environment (the test
runner flushes its own test database between transactional tests). Where it runs, it empties
the tables in one transaction that disables the triggers refusing TRUNCATE and enables them again
before it commits (``core.audit.truncation_allowed``): no session setting opens that door.
"""

from django.conf import settings
from django.core import mail
from django.core.management import CommandError
from django.core.management.commands import flush
from django.core.management.sql import emit_post_migrate_signal
from django.db import connections, transaction

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
        connection = connections[options["database"]]
        if options["interactive"]:
            # Asked before the transaction: no table stays locked while the prompt waits.
            answer = input(
                f'Empty every table of the database "{connection.settings_dict["NAME"]}", '
                "its audit trail included? Type 'yes' to continue: "
            )
            if answer != "yes":
                self.stdout.write("Flush cancelled.")
                return
        # One transaction: the triggers are never left disabled, whatever fails. The apps'
        # post_migrate work (which writes rows) follows, after the commit, as in Django's flush.
        with transaction.atomic(using=connection.alias), truncation_allowed(connection):
            super().handle(**{**options, "interactive": False, "inhibit_post_migrate": True})
        if not options.get("inhibit_post_migrate", False):
            emit_post_migrate_signal(options["verbosity"], options["interactive"], connection.alias)
