from django.core.management.base import BaseCommand, CommandError

from randomization import services

from .verify_randomization_list import _find_list


class Command(BaseCommand):
    help = (
        "Export the randomization list for the statistician as CSV: every slot with its "
        "stratum, block and arm, and the subject allocated to it. Unblinding material: keep "
        "the file where only the statistician can read it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--list", dest="list_id", help="list id (default: the active list)")
        parser.add_argument("--output", "-o", help="CSV file to write (default: standard output)")

    def handle(self, *args, list_id, output, **options):
        rlist = _find_list(list_id)
        if output:
            try:
                with open(output, "w", newline="", encoding="utf-8") as out:
                    count = services.write_list_csv(rlist, out)
            except OSError as exc:
                raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
            self.stderr.write(f"{count} slots of list #{rlist.pk} written to {output}.")
        else:
            count = services.write_list_csv(rlist, self.stdout)
            self.stderr.write(f"{count} slots of list #{rlist.pk} written.")
