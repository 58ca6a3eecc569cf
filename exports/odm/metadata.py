"""The MetaDataVersion and the Study element, derived from the export registry."""

from __future__ import annotations

import hashlib

from lxml import etree

from core.datasets import study_id
from core.export_spec import ChildGroup, ExportForm, Item, ItemType

from .oids import (
    EVENTS,
    STUDY_DESCRIPTION,
    STUDY_NAME,
    XML_LANG,
    codelist_oid,
    event_of,
    form_oid,
    group_oid,
    item_oid,
    unit_oid,
)
from .scope import clinical_forms
from .values import _text

# --- metadata ------------------------------------------------------------------------------------


def _translated(parent, tag: str, text: str):
    element = etree.SubElement(parent, tag)
    etree.SubElement(element, "TranslatedText", {XML_LANG: "en"}).text = _text(text)
    return element


def _key_item(form: ExportForm, group: ChildGroup | None) -> str:
    return group.key if group else (form.domain_key if form.repeating else "")


def _item_group_def(mdv, form: ExportForm, group: ChildGroup | None = None) -> None:
    items = group.items if group else form.items
    attrs = {
        "OID": group_oid(form, group),
        "Name": group.label if group else form.label,
        "Repeating": "Yes" if group else "No",
    }
    if not group:
        attrs["Domain"] = form.code
    element = etree.SubElement(mdv, "ItemGroupDef", attrs)
    key = _key_item(form, group)
    for number, item in enumerate(items, 1):
        ref = {"ItemOID": item_oid(form, item, group), "OrderNumber": str(number)}
        ref["Mandatory"] = "Yes" if item.name == key else "No"
        if item.name == key:
            ref["KeySequence"] = "1"
        etree.SubElement(element, "ItemRef", ref)


def _item_def(mdv, form: ExportForm, item: Item, group: ChildGroup | None = None) -> None:
    attrs = {"OID": item_oid(form, item, group), "Name": item.name, "DataType": item.type.value}
    if item.length:
        attrs["Length"] = str(item.length)
    element = etree.SubElement(mdv, "ItemDef", attrs)
    _translated(element, "Question", item.label)
    if item.unit:
        etree.SubElement(element, "MeasurementUnitRef", MeasurementUnitOID=unit_oid(item.unit))
    if item.codelist:
        etree.SubElement(element, "CodeListRef", CodeListOID=codelist_oid(form, item, group))


def codelist_type(item: Item) -> str:
    return {ItemType.INTEGER: "integer", ItemType.FLOAT: "float"}.get(item.type, "text")


def _codelist(mdv, form: ExportForm, item: Item, group: ChildGroup | None = None) -> None:
    element = etree.SubElement(
        mdv,
        "CodeList",
        OID=codelist_oid(form, item, group),
        Name=item.label,
        DataType=codelist_type(item),
    )
    for number, (code, decode) in enumerate(item.codelist, 1):
        entry = etree.SubElement(
            element, "CodeListItem", CodedValue=str(code), OrderNumber=str(number)
        )
        _translated(entry, "Decode", str(decode))


def _all_items(forms: list[ExportForm]):
    """(form, group or None, item) for every item of the forms, in order."""
    for form in forms:
        for item in form.items:
            yield form, None, item
        for group in form.children:
            for item in group.items:
                yield form, group, item


def _protocol_and_events(mdv, forms: list[ExportForm]) -> None:
    events = [e for e in EVENTS if any(event_of(f) == e for f in forms)]
    protocol = etree.SubElement(mdv, "Protocol")
    for number, event in enumerate(events, 1):
        etree.SubElement(
            protocol,
            "StudyEventRef",
            StudyEventOID=event.oid,
            OrderNumber=str(number),
            Mandatory="Yes" if number == 1 else "No",
        )
    for event in events:
        element = etree.SubElement(
            mdv, "StudyEventDef", OID=event.oid, Name=event.label, Repeating="No", Type=event.type
        )
        members = [f for f in forms if event_of(f) == event]
        for number, form in enumerate(members, 1):
            etree.SubElement(
                element,
                "FormRef",
                FormOID=form_oid(form),
                OrderNumber=str(number),
                Mandatory="Yes" if form.subject_path == "pk" else "No",
            )


def metadata_version() -> etree._Element:
    """``MetaDataVersion`` from the registry: events, forms, item groups, items, code lists."""
    forms = clinical_forms()
    mdv = etree.Element("MetaDataVersion", OID="MDV", Name="Export registry")
    _protocol_and_events(mdv, forms)
    for form in forms:
        element = etree.SubElement(
            mdv,
            "FormDef",
            OID=form_oid(form),
            Name=form.label,
            Repeating="Yes" if form.repeating else "No",
        )
        groups = [None, *form.children]
        for number, group in enumerate(groups, 1):
            etree.SubElement(
                element,
                "ItemGroupRef",
                ItemGroupOID=group_oid(form, group),
                OrderNumber=str(number),
                Mandatory="Yes" if group is None else "No",
            )
    for form in forms:
        _item_group_def(mdv, form)
        for group in form.children:
            _item_group_def(mdv, form, group)
    for form, group, item in _all_items(forms):
        _item_def(mdv, form, item, group)
    for form, group, item in _all_items(forms):
        if item.codelist:
            _codelist(mdv, form, item, group)
    digest = hashlib.sha256(etree.tostring(mdv)).hexdigest()[:12]
    mdv.set("OID", f"MDV.{digest}")
    mdv.set("Description", "Derived from the export registry (exports.records.export_forms).")
    return mdv


def study_element(mdv: etree._Element) -> etree._Element:
    study = etree.Element("Study", OID=study_id())
    variables = etree.SubElement(study, "GlobalVariables")
    etree.SubElement(variables, "StudyName").text = STUDY_NAME
    etree.SubElement(variables, "StudyDescription").text = STUDY_DESCRIPTION
    etree.SubElement(variables, "ProtocolName").text = study_id()
    units = sorted({item.unit for _, _, item in _all_items(clinical_forms()) if item.unit})
    if units:
        basic = etree.SubElement(study, "BasicDefinitions")
        for unit in units:
            element = etree.SubElement(basic, "MeasurementUnit", OID=unit_oid(unit), Name=unit)
            _translated(element, "Symbol", unit)
    study.append(mdv)
    return study
