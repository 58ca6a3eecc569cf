from django.core.management.base import BaseCommand, CommandError

from core.commands import named_user
from core.errors import DomainError
from randomization import services

from .verify_randomization_list import _find_list


class Command(BaseCommand):
    help = (
        "Make an unused randomization list inactive (e.g. generated with the wrong parameters), "
        "with a reason, so that a new one can be generated. A list in use is never retired."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="list_id", help="list id (default: the active list)")
        parser.add_argument("--reason", required=True, help="why (recorded in the audit trail)")
        parser.add_argument("--user", help="username of the statistician (recorded)")

    def handle(self, *args, list_id, reason, user, **options):
        rlist = _find_list(list_id)
        author = named_user(user) if user else None
        try:
            services.retire_randomization_list(rlist, user=author, reason=reason)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Randomization list #{rlist.pk} is now inactive."))
