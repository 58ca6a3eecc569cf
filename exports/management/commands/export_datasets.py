import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from core.commands import export_reader
from exports import background, dataset_json


class Command(BaseCommand):
    help = (
        "Write the CDISC Dataset-JSON v1.1 datasets into DIR, one file per dataset (dm.json, "
        "ae.json ...): the SDTM-like DM, DS, IE, AE and SUPPAE and one dataset per CRF of the "
        "export registry, all as of one moment. Never with direct identifiers. By default every "
        "site, as the operator at the server; --user USERNAME exports that user's sites, as the "
        "API would."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", help="an existing, writable folder")
        parser.add_argument("--ndjson", action="store_true", help="NDJSON files (.ndjson)")
        parser.add_argument("--user", help="export as this user: their sites")
        parser.add_argument(
            "--domain",
            nargs="+",
            action="extend",  # --domain ae dm, or --domain ae --domain dm
            dest="domains",
            metavar="DOMAIN",
            help="only these datasets (any case: dm ae suppae elig ...); default: all",
        )

    def handle(self, *args, directory, ndjson=False, user=None, domains=None, **options):
        folder = self._folder(directory)
        exporter = self._user(user)
        try:
            chosen = (
                [dataset_json.dataset_named(code) for code in domains]
                if domains
                else dataset_json.datasets()
            )
        except dataset_json.UnknownDataset as exc:
            raise CommandError(str(exc)) from None
        # One moment for every file: SUPPAE's rows are those of AE's events, DM's subjects
        # those of AE's...
        with background.one_snapshot(DEFAULT_DB_ALIAS):
            for dataset in chosen:
                export = dataset_json.Export(dataset, exporter, ndjson=ndjson)
                path = folder / export.filename
                self._write(export, path)
                self.stdout.write(f"{path}: {export.records} records")

    @staticmethod
    def _folder(directory: str) -> Path:
        folder = Path(directory)
        if not folder.is_dir():
            raise CommandError(f"{directory} is not a folder: create it first.")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CommandError(f"{directory} is not writable.")
        return folder

    @staticmethod
    def _user(username: str | None):
        if username is None:
            return None  # the operator at the server: every site
        return export_reader(username)

    @staticmethod
    def _write(export: dataset_json.Export, path: Path) -> None:
        """Write next to ``path`` first, then rename: no half-written dataset is left."""
        partial = path.with_name(f".{path.name}.part")
        try:
            with partial.open("w", encoding="utf-8", newline="\n") as out:
                for chunk in export:
                    out.write(chunk)
            partial.replace(path)
        except OSError as exc:
            if partial.is_file():
                partial.unlink()
            raise CommandError(f"Cannot write {path}: {exc.strerror or exc}.") from None
