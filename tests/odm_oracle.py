"""The tests' oracle of the ODM snapshot: each ``FormData`` written by Python from the records,
as lxml writes the same elements (``test_the_snapshot_text_is_what_lxml_writes...``). The
database writes the file (``exports.odm.fragments``); the tests compare its bytes with these."""

from __future__ import annotations

import re
from collections.abc import Iterator
from operator import attrgetter

from core import access
from exports import records
from exports.odm import writer
from exports.odm.fragments import _Fragment
from exports.odm.layout import _Group, _Layout, _ordered
from exports.odm.snapshot import Snapshot, _signature_text
from exports.odm.values import (
    _ESCAPE,
    _FORMATS,
    _NOT_XML,
    _attribute,
    _repeat_key,
    _text,
    _xml_attribute,
    odm_value,
)

_SPECIAL = re.compile(_ESCAPE.pattern[:-1] + _NOT_XML.pattern[1:])  # to escape or to drop
_PLAIN = {kind: write for kind, write in _FORMATS.items() if kind is not str}  # nothing to escape


def group_text(layout: _Group, values, attrs: str = "") -> str:
    """An ``ItemGroupData`` as text, from its items' values as read from the records."""
    items = []
    for oid, value in zip(layout.oids, values, strict=True):
        prefix = f'<ItemData ItemOID="{_xml_attribute(oid)}" Value="'
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
    start = f'<ItemGroupData ItemGroupOID="{_xml_attribute(layout.oid)}"'
    if not items:
        return f"{start}{attrs}/>"
    return f"{start}{attrs}>{''.join(items)}</ItemGroupData>"


class PythonSnapshot(Snapshot):
    """The snapshot with every record read as an instance and its text written by Python."""

    def _stream(self, layout: _Layout, threaded: bool) -> Iterator[_Fragment]:
        queryset = self.scope.records(layout.form)
        subjects = layout.form.subject_path == "pk"
        # In the database's order: a subject's records by id, a record's child rows by id.
        ordered = _ordered(queryset, layout.form).order_by("odm_subject_id", "pk")
        for record in records.stream(ordered):
            text = self._form_data(layout, record)
            yield _Fragment(record.odm_subject_id, record.pk, text, record if subjects else None)

    def _form_data(self, layout: _Layout, record) -> str:
        values = [read(record) for read in layout.main.readers]
        out = [f'<FormData FormOID="{_attribute(layout.oid)}"']
        if layout.form.repeating:
            key = values[layout.main.key] if layout.main.key is not None else None
            out.append(f' FormRepeatKey="{_attribute(_repeat_key(key, record.pk))}"')
        out.append(">")
        signed = self.signed.get(layout.form.name)
        signature = signed.current(record) if signed else None
        if signature is not None:
            location = self.locations[access.site_id_of(record)]
            out.append(_signature_text(signed, signature, location, self.usernames))
        out.append(group_text(layout.main, values))
        for group in layout.children:
            rows = group.group.records(record)
            if group.group.model:
                rows.sort(key=attrgetter("pk"))
            for number, child in enumerate(rows, 1):
                child_values = [read(child) for read in group.readers]
                key = child_values[group.key] if group.key is not None else None
                pk = getattr(child, "pk", None) or number
                repeat = f' ItemGroupRepeatKey="{_attribute(_repeat_key(key, pk))}"'
                out.append(group_text(group, child_values, repeat))
        out.append("</FormData>")
        return "".join(out)


def written_by_python(monkeypatch) -> None:
    """From now on in the test, the ODM snapshot's FormData are the oracle's."""
    monkeypatch.setattr(writer, "Snapshot", PythonSnapshot)
