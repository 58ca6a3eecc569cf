"""``migrate``, which refuses to go backwards outside DEBUG and the test runner.

Unapplying a migration (``migrate subjects zero``, or to an earlier migration) drops or alters
tables, history tables and the security log included: like ``flush`` it would wipe the audit
trail. Forward migrations run as always (as the owner role: see the README's "Database roles").
"""

from django.core.management.commands import migrate
from django.db import connections
from django.db.migrations.exceptions import AmbiguityError
from django.db.migrations.executor import MigrationExecutor

from .flush import refuse_outside_debug_or_tests


def goes_backwards(database: str, app_label: str, name: str) -> bool:
    """Would ``migrate app_label name`` unapply anything? (Unknown names: Django says so.)"""
    executor = MigrationExecutor(connections[database])
    target: tuple[str, str | None]
    if name == "zero":
        target = (app_label, None)
    else:
        try:
            migration = executor.loader.get_migration_by_prefix(app_label, name)
        except (AmbiguityError, KeyError):
            return False
        target = (app_label, migration.name)
        if target not in executor.loader.graph.nodes:
            return False  # a replaced migration: Django's own command sorts it out
    return any(backwards for _, backwards in executor.migration_plan([target]))


class Command(migrate.Command):
    def handle(self, *args, **options):
        app_label, name = options.get("app_label"), options.get("migration_name")
        if app_label and name and goes_backwards(options["database"], app_label, name):
            refuse_outside_debug_or_tests(
                f"migrate {app_label} {name}",
                "would unapply migrations and drop or alter tables",
            )
        return super().handle(*args, **options)
