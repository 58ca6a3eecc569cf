"""One ODM file: the frame written by lxml's incremental writer, the subjects streamed."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator

from django.db import DEFAULT_DB_ALIAS
from django.utils import timezone
from lxml import etree

from core.datasets import study_id
from core.export_spec import ExportForm

from .. import background
from .admin import admin_data, load_users
from .archive import Archive
from .audited import audited_models, users_in
from .metadata import metadata_version, study_element
from .oids import NS, ODM_VERSION, location_oid
from .scope import Scope, clinical_forms, selected_forms, site_form
from .snapshot import Snapshot
from .values import _datetime

FLUSH_EVERY = 32  # subjects between two chunks of the stream


# --- the file ------------------------------------------------------------------------------------


class _Sink:
    """Where lxml's incremental writer puts the bytes until the stream takes them."""

    def __init__(self):
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.parts.append(data)

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


class OdmExport:
    """One ODM file for ``scope``: ``chunks()`` yields its bytes, subject by subject."""

    def __init__(
        self, scope: Scope, *, archival: bool = False, forms: list[ExportForm] | None = None
    ):
        self.scope = scope
        self.archival = archival
        self.forms = clinical_forms() if forms is None else forms
        self.created = timezone.now()
        self.file_oid = f"ODM.{self.created:%Y%m%dT%H%M%SZ}.{uuid.uuid4().hex[:12]}"
        self.subjects = 0
        self.audit_records = 0

    @property
    def filename(self) -> str:
        kind = "archival" if self.archival else "snapshot"
        return f"odm-{kind}-{self.created:%Y%m%dT%H%M%SZ}.xml"

    def _root_attributes(self) -> dict:
        attrs = {
            "Description": "Archival audit trail" if self.archival else "Snapshot of current data",
            "FileType": "Transactional" if self.archival else "Snapshot",
            "Granularity": "All",
        }
        if self.archival:
            attrs["Archival"] = "Yes"
        attrs.update(
            FileOID=self.file_oid,
            CreationDateTime=_datetime(self.created),
            AsOfDateTime=_datetime(self.created),
            ODMVersion=ODM_VERSION,
            Originator="mini-EDC",
            SourceSystem="mini-EDC",
        )
        return attrs

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes, every query of it as of one moment (``background.one_snapshot``)."""
        with background.one_snapshot(DEFAULT_DB_ALIAS):
            yield from self._chunks()

    def _chunks(self) -> Iterator[bytes]:
        sink = _Sink()
        sites = list(self.scope.records(site_form()))
        locations = {site.pk: location_oid(site.code) for site in sites}
        audited = audited_models(self.forms)
        mdv = metadata_version()
        with etree.xmlfile(sink, encoding="utf-8") as xf:
            xf.write_declaration()
            with xf.element(f"{{{NS}}}ODM", self._root_attributes(), nsmap={None: NS}):
                xf.write(study_element(mdv))
                user_ids = users_in(self.scope, audited)
                users = load_users(user_ids)
                xf.write(admin_data(mdv.get("OID"), sites, users, no_user=None in user_ids))
                xf.flush()
                yield sink.take()
                usernames = {user.pk: user.get_username() for user in users}
                with xf.element(
                    "ClinicalData", StudyOID=study_id(), MetaDataVersionOID=mdv.get("OID")
                ):
                    yield from self._clinical_data(xf, sink, locations, usernames, audited)
        yield sink.take()

    def _clinical_data(self, xf, sink: _Sink, locations, usernames, audited) -> Iterator[bytes]:
        source = (
            Archive(self.scope, locations, usernames, audited)
            if self.archival
            else Snapshot(self.scope, locations, usernames, self.forms)
        )
        for count, element in enumerate(source.subject_data(), 1):
            if isinstance(element, bytes):  # written with the database's text, in its place
                xf.flush()
                sink.write(element)
            else:
                xf.write(element)
            if count % FLUSH_EVERY == 0:
                xf.flush()
                yield sink.take()
        xf.flush()
        self.subjects = source.subjects
        self.audit_records = getattr(source, "audit_records", 0)


def export_for(user, *, archival: bool = False, forms: Iterable[str] | None = None) -> OdmExport:
    """The export of ``user``'s sites, with identifiers as their role allows; ``forms``: the
    forms of ClinicalData to hold (``selected_forms``)."""
    return OdmExport(Scope.of(user), archival=archival, forms=selected_forms(forms))


def operator_export(
    *, archival: bool = False, identifiers: bool = False, forms: Iterable[str] | None = None
) -> OdmExport:
    """A study-wide export for an operator at the server (management command)."""
    return OdmExport(Scope(None, identifiers), archival=archival, forms=selected_forms(forms))
