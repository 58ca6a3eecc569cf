from django.core.management.base import BaseCommand, CommandError

from randomization import selectors, services
from randomization.models import RandomizationList


class Command(BaseCommand):
    help = (
        "Re-generate the randomization list from its recorded seed and parameters and compare "
        "it with the stored list: prints OK or the first difference (non-zero exit)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="list_id", help="list id (default: the active list)")

    def handle(self, *args, list_id, **options):
        rlist = _find_list(list_id)
        result = services.verify_randomization_list(rlist)
        if not result.ok:
            raise CommandError(result.message)
        self.stdout.write(self.style.SUCCESS(result.message))


def _find_list(list_id) -> RandomizationList:
    if list_id is None:
        rlist = selectors.active_list()
        if rlist is None:
            raise CommandError("There is no active randomization list; give --list ID.")
        return rlist
    if not str(list_id).isdigit():
        raise CommandError(f"--list must be a list id (a whole number), not '{list_id}'.")
    rlist = RandomizationList.objects.filter(pk=int(list_id)).first()
    if rlist is None:
        raise CommandError(f"There is no randomization list #{list_id}.")
    return rlist
