"""``sqlflush``, refused outside DEBUG and the test runner (see ``flush``): the SQL it prints
empties every table, history and security log included."""

from django.core.management.commands import sqlflush

from .flush import refuse_outside_debug_or_tests


class Command(sqlflush.Command):
    help = "Print the SQL that empties every table (DEBUG or tests only: it wipes the audit trail)."

    def handle(self, **options):
        refuse_outside_debug_or_tests("sqlflush", "prints the SQL that empties every table")
        return super().handle(**options)
