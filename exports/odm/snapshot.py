"""The snapshot's ClinicalData: each subject's SubjectData written as text."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import partial

from core import access
from core.export_spec import ExportForm

from .. import background, records
from .fragments import _Fragment, _fragments
from .layout import _by_subject, _Group, _Layout, _ordered, _Row, _value_rows
from .oids import EVENTS, signature_oid, user_oid
from .scope import SIGNED, Scope, Signed
from .values import _PLAIN, _SPECIAL, _attribute, _datetime, _repeat_key, _text, odm_value


def _group_text(layout: _Group, values, attrs: str = "") -> str:
    """An ``ItemGroupData`` as text: what lxml writes of the same element (building the
    elements cost more than the rest of the snapshot; a test compares the bytes)."""
    items = []
    for prefix, value in zip(layout.prefixes, values, strict=True):
        kind = type(value)
        if kind is str:
            if not value:
                continue
            if _SPECIAL.search(value) is None:  # most values: text as is
                items.append(f'{prefix}{value}"/>')
                continue
            text = _text(value)
        elif value is None:
            continue
        elif (write := _PLAIN.get(kind)) is not None:
            items.append(f'{prefix}{write(value)}"/>')
            continue
        else:
            text = odm_value(value)
            if text is None:
                continue
        items.append(f'{prefix}{_attribute(text)}"/>')
    if not items:
        return f"{layout.start}{attrs}/>"
    return f"{layout.start}{attrs}>{''.join(items)}</ItemGroupData>"


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

    def _values_path(self, layout: _Layout) -> bool:
        path = layout.values_path
        return path is not None and not path.computed and layout.form.name not in self.signed

    def _stream(self, layout: _Layout, threaded: bool) -> Iterable:
        queryset = self.scope.records(layout.form)
        if self._values_path(layout):
            return _fragments(layout, queryset, threaded) or _value_rows(layout, queryset)
        if layout.values_path is not None:
            compute = partial(self._computed, layout)
            found = _fragments(layout, queryset, compute=compute)
            if found is not None:
                return found
        return records.stream(_ordered(queryset, layout.form))

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
            [layout.form.model_class() for layout in self.layouts if self._values_path(layout)]
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
            subject = subjects[0]
            yield self._subject(
                subject.subject if isinstance(subject, _Fragment) else subject, entries
            )

    def _subject(self, subject, entries) -> bytes:
        """The subject's ``SubjectData`` as UTF-8 text (the database's ``FormData`` in place)."""
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
                for layout, record in by_event[event.oid]:
                    if isinstance(record, _Fragment):
                        out.append(record.text)
                    else:
                        out.append(self._form_data(layout, record, location))
                out.append("</StudyEventData>")
        out.append("</SubjectData>")
        return "".join(out).encode()

    def _form_data(self, layout: _Layout, record, location: str) -> str:
        if isinstance(record, _Row):
            values, children = record.values, record.children
        else:
            values = [read(record) for read in layout.main.readers]
            children = [
                [
                    (getattr(child, "pk", None), [read(child) for read in group.readers])
                    for child in group.group.records(record)
                ]
                for group in layout.children
            ]
        out = [f'<FormData FormOID="{_attribute(layout.oid)}"']
        if layout.form.repeating:
            key = values[layout.main.key] if layout.main.key is not None else None
            out.append(f' FormRepeatKey="{_attribute(_repeat_key(key, record.pk))}"')
        out.append(">")
        signed = self.signed.get(layout.form.name)
        signature = signed.current(record) if signed else None
        if signature is not None:
            out.append(_signature_text(signed, signature, location, self.usernames))
        out.append(_group_text(layout.main, values))
        for group, rows in zip(layout.children, children, strict=True):
            for number, (pk, child_values) in enumerate(rows, 1):
                key = child_values[group.key] if group.key is not None else None
                repeat = f' ItemGroupRepeatKey="{_attribute(_repeat_key(key, pk or number))}"'
                out.append(_group_text(group, child_values, repeat))
        out.append("</FormData>")
        return "".join(out)
