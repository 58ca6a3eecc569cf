import codecs
import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.commands import export_reader
from exports import odm


class Command(BaseCommand):
    help = (
        "Write the study as a CDISC ODM 1.3.2 XML file: the metadata derived from the export "
        "registry, sites and users, and the clinical data (the current values; --archival: "
        "every change as a transaction with its audit record, and the e-signatures). By default "
        "a study-wide export as an operator, all sites, WITHOUT the direct identifiers (initials, "
        "date of birth, screening number) unless --with-identifiers; --user USERNAME exports "
        "that user's scope (their sites, identifiers as their role allows), as the API would."
    )

    def add_arguments(self, parser):
        parser.add_argument("-o", "--output", help="the file to write (default: standard output)")
        parser.add_argument(
            "--archival",
            action="store_true",
            help="the Transactional, Archival file: the audit trail instead of a snapshot",
        )
        parser.add_argument("--user", help="export as this user: their sites and role")
        parser.add_argument(
            "--forms",
            help="comma-separated form names (e.g. adverse-events): the clinical data of these "
            "forms only, with the subjects' form (default: every form)",
        )
        parser.add_argument(
            "--with-identifiers",
            action="store_true",
            help="an operator's export with the direct identifiers (not with --user)",
        )

    def handle(
        self,
        *args,
        output=None,
        archival=False,
        user=None,
        with_identifiers=False,
        forms=None,
        **kw,
    ):
        names = None if forms is None else [n for n in forms.split(",") if n.strip()]
        if names is not None and not names:
            raise CommandError("--forms names no form: give e.g. --forms adverse-events.")
        try:
            export = self._export(user, archival, with_identifiers, names)
        except odm.UnknownForm as exc:
            raise CommandError(str(exc)) from None
        if output:
            self._write_file(export, Path(output))
            self.stderr.write(
                f"Wrote {export.subjects} subjects"
                + (f" and {export.audit_records} audit records" if archival else "")
                + f" to {output}."
            )
        else:
            decoder = codecs.getincrementaldecoder("utf-8")()
            for chunk in export.chunks():
                self.stdout.write(decoder.decode(chunk), ending="")
            self.stdout.write(decoder.decode(b"", final=True), ending="")

    def _export(self, username, archival: bool, with_identifiers: bool, forms) -> odm.OdmExport:
        if username is None:
            return odm.operator_export(archival=archival, identifiers=with_identifiers, forms=forms)
        if with_identifiers:
            raise CommandError(
                "--with-identifiers is for the operator's export: a user's export shows the "
                "identifiers their role allows."
            )
        return odm.export_for(export_reader(username), archival=archival, forms=forms)

    def _write_file(self, export: odm.OdmExport, path: Path) -> None:
        """Write through a temporary file next to ``path``: no half-written file is left."""
        folder = path.parent if str(path.parent) else Path(".")
        partial = None
        try:
            with tempfile.NamedTemporaryFile(
                "wb", dir=folder, prefix=f".{path.name}.", suffix=".part", delete=False
            ) as handle:
                partial = handle.name
                for chunk in export.chunks():
                    handle.write(chunk)
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(partial, 0o666 & ~umask)  # as a file the user wrote, not a private temp file
            os.replace(partial, path)
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from None
        finally:
            if partial and os.path.exists(partial):
                os.unlink(partial)
