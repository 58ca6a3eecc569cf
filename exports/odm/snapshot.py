"""The snapshot's ClinicalData: each subject's SubjectData written as text."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from core import access
from core.export_spec import ExportForm

from .. import background
from .fragments import _Fragment, _fragments
from .layout import _by_subject, _Layout
from .oids import EVENTS, signature_oid, user_oid
from .scope import SIGNED, Scope, Signed
from .values import _attribute, _datetime, odm_value


def _computed_value(value) -> str | None:
    """A value as the SQL takes it: a text as it is (the SQL escapes it as a stored one), any
    other value as its ODM text."""
    return value if type(value) is str else odm_value(value)


def _signature_text(signed: Signed, signature, location: str, usernames: dict) -> str:
    user = _attribute(user_oid(usernames.get(signature.signer_id)))
    kind = _attribute(signature_oid(signed.form, signature.kind))
    return (
        f'<Signature><UserRef UserOID="{user}"/><LocationRef LocationOID="{_attribute(location)}"/>'
        f'<SignatureRef SignatureOID="{kind}"/>'
        f"<DateTimeStamp>{_datetime(signature.signed_at)}</DateTimeStamp></Signature>"
    )


class Snapshot:
    def __init__(
        self,
        scope: Scope,
        locations: dict[int, str],
        usernames: dict[int, str],
        forms: list[ExportForm],
    ):
        self.scope = scope
        self.locations = locations
        self.usernames = usernames
        self.layouts = [_Layout.of(form, scope.identifiers) for form in forms]
        self.signed = {s.form_name: s for s in SIGNED if s.current is not None}
        self.subjects = 0

    def _computes(self, layout: _Layout) -> bool:
        """Are some of the form's values computed by Python? (Its records are then read as
        instances: so are the subjects, whose instance keys the ``SubjectData``.)"""
        return (
            layout.values_path.computed
            or layout.form.name in self.signed
            or layout.form.subject_path == "pk"
        )

    def _stream(self, layout: _Layout, threaded: bool) -> Iterator[_Fragment]:
        queryset = self.scope.records(layout.form)
        if self._computes(layout):
            return _fragments(layout, queryset, compute=partial(self._computed, layout))
        return _fragments(layout, queryset, threaded)

    def _computed(self, layout: _Layout, record) -> tuple[list, list[list], str | None]:
        """What the database cannot read of ``record``: its computed items' values, its
        computed child groups' rows and its signature's text (``fragments._Computed``)."""
        path = layout.values_path
        values = [
            _computed_value(read(record))
            for read, lookup in zip(layout.main.readers, path.lookups, strict=True)
            if lookup is None
        ]
        children = []
        for group, (model, _, _) in zip(layout.children, path.children, strict=True):
            if model is None:
                children.append(
                    [
                        [
                            record.pk,
                            getattr(child, "pk", None) or number,
                            *(_computed_value(read(child)) for read in group.readers),
                        ]
                        for number, child in enumerate(group.group.records(record), 1)
                    ]
                )
        signed = self.signed.get(layout.form.name)
        signature = signed.current(record) if signed else None
        if signature is None:
            return values, children, None
        location = self.locations[access.site_id_of(record)]
        return values, children, _signature_text(signed, signature, location, self.usernames)

    def subject_data(self) -> Iterator[bytes]:
        # The threads go to the largest form read as values (the adverse events): one export
        # opens at most EXPORT_QUERY_THREADS connections more.
        largest = background.largest(
            [layout.form.model_class() for layout in self.layouts if not self._computes(layout)]
        )
        streams = [
            self._stream(layout, layout.form.model_class() is largest) for layout in self.layouts
        ]
        subject_index = next(
            i for i, layout in enumerate(self.layouts) if layout.form.subject_path == "pk"
        )
        for _, entries in _by_subject(streams):
            subjects = [obj for index, obj in entries if index == subject_index]
            if not subjects:  # records of a subject outside the scope: impossible, skipped
                continue
            self.subjects += 1
            yield self._subject(subjects[0].subject, entries)

    def _subject(self, subject, entries) -> bytes:
        """The subject's ``SubjectData`` as UTF-8 text around the database's ``FormData``."""
        location = self.locations[access.site_id_of(subject)]
        by_event: dict[str, list] = {}
        for index, obj in entries:
            layout = self.layouts[index]
            by_event.setdefault(layout.event.oid, []).append((layout, obj))
        out = [
            f'<SubjectData SubjectKey="{_attribute(subject.subject_identifier)}">'
            f'<SiteRef LocationOID="{_attribute(location)}"/>'
        ]
        for event in EVENTS:
            if event.oid in by_event:
                out.append(f'<StudyEventData StudyEventOID="{_attribute(event.oid)}">')
                out.extend(fragment.text for _, fragment in by_event[event.oid])
                out.append("</StudyEventData>")
        out.append("</SubjectData>")
        return "".join(out).encode()
