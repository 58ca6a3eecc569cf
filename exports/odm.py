"""CDISC ODM 1.3.2: the study's metadata, admin data and clinical data in one XML file, streamed.

Everything is derived from the export registry (``exports.records.export_forms()``); a CRF added
later is exported here with no ODM code of its own. Two kinds of file:

* **Snapshot** (the default): the current values. ``FileType="Snapshot"``.
* **Archival** (``archival=True``): ``FileType="Transactional" Archival="Yes"``: every history row
  of every exported model (the forms' models and their child groups' models) is one transaction
  carrying one ``AuditRecord`` (``UserRef``, ``LocationRef`` = the subject's site,
  ``DateTimeStamp`` UTC, ``ReasonForChange``, ``SourceID`` = ``"<app_label.model>:<history_id>"``),
  in time order within each subject; the e-signatures are ``Signature`` elements.

Design
------
* OIDs: study ``settings.EDC_STUDY_ID`` (default ``TORI-BEV-HCC-3``, also the ProtocolName);
  events ``SE.<NAME>``;
  forms ``F.<code>``; item groups ``IG.<code>`` and ``IG.<code>.<CHILD>``; items
  ``I.<code>.<ITEM>`` and ``I.<code>.<CHILD>.<ITEM>``; code lists ``CL.`` + the item's OID stem;
  units ``MU.<UNIT>``; sites ``LOC.<site code>``; users ``USR.<username>`` (``USR.SYSTEM`` for a
  history row without a user: operators' commands and loads); signature definitions
  ``SD.<code>.<KIND>``. The MetaDataVersion OID is ``MDV.`` + a hash of the metadata: it changes
  exactly when the registry does.
* Events (``EVENTS``): SCREENING (subject and demographics, eligibility), RANDOMIZATION
  (allocation), COMMON (``Type="Common"``: adverse events, data queries, and any form the table
  does not name). One ``StudyEventData`` per event per subject, not repeating.
* A form of the registry is a ``FormDef``; a repeating form (adverse events, queries) is a
  repeating form: one ``FormData`` per record, ``FormRepeatKey`` = its ``domain_key`` (the AE
  number) or its id. Each form has one ``ItemGroupDef`` for its items (one per form instance:
  ``Repeating="No"``) and one repeating ``ItemGroupDef`` per child group (an AE's causality,
  ``ItemGroupRepeatKey`` = the drug; the eligibility's criteria, key = the criterion code; a
  query's thread, key = the message id). ODM item groups do not nest, so the child groups are
  siblings of the form's group inside the ``FormData``: the AE number is the ``FormRepeatKey``.
* Forms with no subject (the sites) are not forms of ClinicalData: they are the ``Location``\\ s.
* Values: dates ISO 8601, date-times UTC (``...Z``), booleans ``1``/``0``, decimals without
  exponent; an empty value is left out (in an archival update, a value emptied is
  ``IsNull="Yes"``). The direct identifiers' values (``Item.direct_identifier``) are left out
  unless the export may show them; their ``ItemDef``\\ s stay (the metadata is the CRF's, the same
  for everyone).
* Archival transactions: a record's insert is ``Insert`` of its ``FormData`` (or, for a child row,
  of its ``ItemGroupData``) with every stored item; an update carries **the items that changed**
  (``Update``); a deletion is ``Remove`` of the ``FormData`` (a child row: of its
  ``ItemGroupData``; the subject: of the ``SubjectData``) with its ``AuditRecord`` and no items.
  Ancestors are ``Update`` (``Insert`` for the subject's first row and an event's first form).
  The items carried are those stored on the record or computed from its own fields (paths like
  ``term.meddra_code``, properties like the age); the registry's function items (the eligibility
  evaluation and signature columns, a query's record type) are derived now, not audited: they
  are in the snapshot only, and the signatures are ``Signature`` elements.
* A file may hold some forms only (``forms``: e.g. the adverse events, for a safety review):
  the MetaDataVersion and AdminData stay the study's; ClinicalData holds the subjects' form and
  the forms named (and, archival, their history and signatures).
* Streaming: the metadata is small; the clinical data are read form by form (scoped by
  ``records.records``, chunked by ``records.stream``), each ordered by subject id, merged
  subject by subject (subjects in id order), and each subject's ``SubjectData`` (or its
  transactions) is written and dropped: memory stays flat whatever the number of subjects. A
  form whose items are all stored values (the adverse events and their causality), and the
  history rows of such models, are read as rows of values rather than model instances (the
  same file, faster); forms with functions or properties among their items are read as records.
  The file's frame (ODM, Study, AdminData, ClinicalData) is written by lxml's incremental
  ``xmlfile``; a snapshot's ``SubjectData`` is written as text (``_group_text``: the bytes lxml
  writes of the same elements, tested), as the database writes the values-path forms' text on
  PostgreSQL (``_fragments``); the archival transactions are lxml elements.
* The e-signatures (``SIGNED``): every app's ``export.SIGNED`` (``core.export_spec.SignedForm``):
  the eligibility sign-off (in the snapshot and the archival file) and the investigator's
  casebook sign-off (archival: each signature, void ones included, at its time).
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cached_property
from operator import attrgetter

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ObjectDoesNotExist
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import F, OuterRef, Subquery
from django.utils import timezone
from lxml import etree

from core import access
from core.export_spec import ChildGroup, ExportForm, Item, ItemType, SignedForm
from core.registry import collected
from core.roles import Role

from . import background, records

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ODM_VERSION = "1.3.2"
SYSTEM_USER_OID = "USR.SYSTEM"
FLUSH_EVERY = 32  # subjects between two chunks of the stream


def study_oid() -> str:
    """The study's identifier: ``settings.EDC_STUDY_ID`` (as the Dataset-JSON STUDYID)."""
    return getattr(settings, "EDC_STUDY_ID", "") or "TORI-BEV-HCC-3"


STUDY_NAME = "HCC phase III: toripalimab + bevacizumab versus sorafenib"
STUDY_DESCRIPTION = (
    "A randomized, open-label, multi-center phase III study of toripalimab + bevacizumab versus "
    "sorafenib as first-line therapy for advanced hepatocellular carcinoma."
)
LEGAL_REASON = (
    "Electronic signature under 21 CFR Part 11: the investigator re-entered their password; the "
    "signature records a SHA-256 of the signed data and is void after any change."
)


# --- events --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    label: str
    type: str  # Scheduled | Unscheduled | Common
    forms: tuple[str, ...] = ()

    @property
    def oid(self) -> str:
        return f"SE.{self.name}"


EVENTS = (
    Event("SCREENING", "Screening", "Scheduled", ("subjects", "eligibility")),
    Event("RANDOMIZATION", "Randomization", "Scheduled", ("allocations",)),
    Event("COMMON", "Common forms (adverse events, data queries)", "Common"),
)
DEFAULT_EVENT = EVENTS[-1]  # a form the table does not name


def event_of(form: ExportForm) -> Event:
    return next((e for e in EVENTS if form.name in e.forms), DEFAULT_EVENT)


# --- OIDs ----------------------------------------------------------------------------------------


def _stem(form: ExportForm, group: ChildGroup | None = None) -> str:
    code = form.code.upper()
    return f"{code}.{group.name.upper()}" if group else code


def form_oid(form: ExportForm) -> str:
    return f"F.{_stem(form)}"


def group_oid(form: ExportForm, group: ChildGroup | None = None) -> str:
    return f"IG.{_stem(form, group)}"


def item_oid(form: ExportForm, item: Item, group: ChildGroup | None = None) -> str:
    return f"I.{_stem(form, group)}.{item.name.upper()}"


def codelist_oid(form: ExportForm, item: Item, group: ChildGroup | None = None) -> str:
    return f"CL.{_stem(form, group)}.{item.name.upper()}"


def unit_oid(unit: str) -> str:
    return "MU." + re.sub(r"[^A-Za-z0-9]+", "_", unit).strip("_").upper()


def location_oid(code: str) -> str:
    return f"LOC.{code}"


def user_oid(username: str | None) -> str:
    return f"USR.{username}" if username else SYSTEM_USER_OID


def signature_oid(form: ExportForm, kind: str) -> str:
    return f"SD.{form.code.upper()}.{kind.upper()}"


# --- values --------------------------------------------------------------------------------------

_NOT_XML_CODES = (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20))  # and U+FFFE, U+FFFF
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    return _NOT_XML.sub("", value) if _NOT_XML.search(value) else value


def _datetime(value: datetime) -> str:
    if timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decimal(value: Decimal) -> str:
    return format(value, "f")


def _float(value: float) -> str:
    text = repr(value)
    return _decimal(Decimal(text)) if "e" in text or "E" in text else text


_FORMATS: dict[type, Callable[[object], str]] = {
    str: _text,
    bool: lambda v: "1" if v else "0",
    int: str,
    Decimal: _decimal,
    float: _float,
    date: date.isoformat,
    datetime: _datetime,
}


def odm_value(value) -> str | None:
    """A value as ODM text, or None when there is no value (None or empty)."""
    if value is None or value == "":
        return None
    convert = _FORMATS.get(type(value))
    if convert is None:
        if isinstance(value, datetime):
            convert = _datetime
        elif isinstance(value, date):
            convert = date.isoformat
        else:
            return _text(str(value)) or None
    return convert(value)


# --- what is exported ----------------------------------------------------------------------------


def clinical_forms() -> list[ExportForm]:
    """The forms of ClinicalData: those of a subject (the sites are Locations)."""
    return [form for form in records.export_forms() if form.subject_path]


def subject_form() -> ExportForm:
    return next(form for form in records.export_forms() if form.subject_path == "pk")


class UnknownForm(ValueError):
    """A form asked for by name that is not a form of ClinicalData (the sentence says which)."""


def selected_forms(names: Iterable[str] | None) -> list[ExportForm]:
    """The forms of ClinicalData a file holds: all of them (``names`` None or empty), or those
    named (registry names, e.g. ``adverse-events``) in the registry's order, with the subjects'
    form always (each ``SubjectData`` is built from it). ``UnknownForm`` names the unknown ones
    and lists the choices."""
    forms = clinical_forms()
    wanted = {name.strip() for name in names or () if name.strip()}
    if not wanted:
        return forms
    unknown = sorted(wanted - {form.name for form in forms})
    if unknown:
        raise UnknownForm(
            f"Unknown form{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"Choose among: {', '.join(form.name for form in forms)}."
        )
    return [form for form in forms if form.name in wanted or form.subject_path == "pk"]


def site_form() -> ExportForm:
    return next(form for form in records.export_forms() if not form.subject_path)


def _visible(items: Iterable[Item], identifiers: bool) -> tuple[Item, ...]:
    return tuple(item for item in items if identifiers or not item.direct_identifier)


class Signed(SignedForm):
    """A signed form of the registry (``core.export_spec.SignedForm``), with its export form."""

    @cached_property
    def form(self) -> ExportForm:
        return records.form_named(self.form_name)


def signed_forms() -> tuple[Signed, ...]:
    """Every app's ``export.SIGNED`` (eligibility sign-off, casebook sign-off...), layer order."""
    return tuple(
        Signed(**{f.name: getattr(spec, f.name) for f in fields(spec)})
        for spec in collected("export", "SIGNED")
    )


SIGNED = signed_forms()


# --- scope ---------------------------------------------------------------------------------------


@dataclass
class Scope:
    """Whose export: a user's (their sites, identifiers as their role allows) or, with no user,
    an operator's study-wide export (identifiers only when asked for)."""

    user: object | None = None
    identifiers: bool = False

    @classmethod
    def of(cls, user) -> Scope:
        return cls(user, records.identifiers_for(user))

    @cached_property
    def site_ids(self) -> set[int] | None:
        """None: every site."""
        if self.user is None or access.sees_all_sites(self.user):
            return None
        return access.member_site_ids(self.user)

    def records(self, form: ExportForm) -> models.QuerySet:
        if self.user is None:
            return form.queryset()
        return records.records(form, self.user)

    def subject_ids(self) -> models.QuerySet | None:
        """Ids of every subject ever at the user's sites (deleted ones too), from the history."""
        if self.site_ids is None:
            return None
        model = subject_form().model_class()
        lookup = access.site_lookup_of(model)
        return model.history.filter(**{f"{lookup}__in": self.site_ids}).values("id")


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
    study = etree.Element("Study", OID=study_oid())
    variables = etree.SubElement(study, "GlobalVariables")
    etree.SubElement(variables, "StudyName").text = STUDY_NAME
    etree.SubElement(variables, "StudyDescription").text = STUDY_DESCRIPTION
    etree.SubElement(variables, "ProtocolName").text = study_oid()
    units = sorted({item.unit for _, _, item in _all_items(clinical_forms()) if item.unit})
    if units:
        basic = etree.SubElement(study, "BasicDefinitions")
        for unit in units:
            element = etree.SubElement(basic, "MeasurementUnit", OID=unit_oid(unit), Name=unit)
            _translated(element, "Symbol", unit)
    study.append(mdv)
    return study


# --- admin data ----------------------------------------------------------------------------------


def _role_labels(user) -> list[str]:
    """The user's roles for people: study-wide roles, and site roles with their sites."""
    memberships = [m for m in user.site_memberships.all() if m.active]
    at_sites = {m.role for m in memberships}
    labels = [
        Role(group.name).label
        for group in user.groups.all()
        if group.name in Role.values and group.name not in at_sites
    ]
    labels += [f"{Role(m.role).label} at site {m.site.code}" for m in memberships]
    return labels


def _user_type(user) -> str:
    roles = {g.name for g in user.groups.all()} | {
        m.role for m in user.site_memberships.all() if m.active
    }
    if Role.INVESTIGATOR in roles:
        return "Investigator"
    if roles & {Role.SPONSOR, Role.STATISTICIAN}:
        return "Sponsor"
    return "Other"


def _user_element(admin, user, locations: dict[int, str]) -> None:
    element = etree.SubElement(admin, "User", OID=user_oid(user.get_username()))
    element.set("UserType", _user_type(user))
    etree.SubElement(element, "LoginName").text = _text(user.get_username())
    etree.SubElement(element, "FullName").text = _text(
        user.get_full_name().strip() or user.get_username()
    )
    etree.SubElement(element, "Organization").text = _text(
        "; ".join(_role_labels(user)) or "No study role"
    )
    for membership in user.site_memberships.all():
        if membership.active and membership.site_id in locations:
            etree.SubElement(element, "LocationRef", LocationOID=locations[membership.site_id])


def load_users(user_ids: set) -> list:
    """The users of ``user_ids`` (None stands for "no user recorded"), with their roles."""
    User = get_user_model()
    return list(
        User.objects.filter(pk__in=[pk for pk in user_ids if pk is not None])
        .prefetch_related("groups", "site_memberships__site")
        .order_by(User.USERNAME_FIELD)
    )


def admin_data(mdv_oid: str, sites, users: list, *, no_user: bool) -> etree._Element:
    admin = etree.Element("AdminData", StudyOID=study_oid())
    locations = {site.pk: location_oid(site.code) for site in sites}
    for user in users:
        _user_element(admin, user, locations)
    if no_user:
        element = etree.SubElement(admin, "User", OID=SYSTEM_USER_OID, UserType="Other")
        etree.SubElement(
            element, "FullName"
        ).text = "No user recorded: an operator's command, a data load or the system"
    effective = getattr(settings, "EDC_STUDY_START", timezone.localdate()).isoformat()
    for site in sites:
        location = etree.SubElement(
            admin, "Location", OID=locations[site.pk], Name=_text(site.name), LocationType="Site"
        )
        etree.SubElement(
            location,
            "MetaDataVersionRef",
            StudyOID=study_oid(),
            MetaDataVersionOID=mdv_oid,
            EffectiveDate=effective,
        )
    for signed in SIGNED:
        for kind, meaning in signed.meanings:
            element = etree.SubElement(
                admin,
                "SignatureDef",
                OID=signature_oid(signed.form, kind),
                Methodology="Electronic",
            )
            etree.SubElement(element, "Meaning").text = meaning
            etree.SubElement(element, "LegalReason").text = LEGAL_REASON
    return admin


# --- history of the exported models --------------------------------------------------------------


def _subject_expression(form: ExportForm, *, history: bool):
    """The subject's id on a form's record (or history row)."""
    path = form.subject_path
    if path == "pk":
        return F("id") if history else F("pk")
    if "__" not in path and history:
        return F(f"{path}_id")
    return F(f"{path}__pk")


@dataclass
class Audited:
    """An exported model whose history rows are transactions: a form's, or a child group's."""

    form: ExportForm
    group: ChildGroup | None
    rank: int

    @cached_property
    def model(self) -> type[models.Model]:
        return self.group.model_class() if self.group else self.form.model_class()

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def _parent_history(self) -> models.QuerySet:
        parent = self.form.model_class().history.filter(
            id=OuterRef(f"{self.group.parent_field}_id")
        )
        return parent.order_by("-history_date", "-history_id")

    def _annotations(self) -> dict:
        if self.group is None:
            return {"odm_subject_id": _subject_expression(self.form, history=True)}
        parent_id = F(f"{self.group.parent_field}_id")
        if self.form.subject_path == "pk":
            subject = parent_id
        else:
            subject = Subquery(
                self._parent_history().values(_subject_expression(self.form, history=True).name)[:1]
            )
        annotations = {"odm_subject_id": subject, "odm_parent_key": parent_id}
        domain = _stored_attname(self.form.model_class(), self.form, self.form.domain_key)
        if self.form.repeating and domain:
            annotations["odm_parent_key"] = Subquery(self._parent_history().values(domain)[:1])
        return annotations

    def history(self, scope: Scope) -> models.QuerySet:
        history = self.model.history.annotate(**self._annotations())
        if self.group is None:  # a record of no subject has no place in ClinicalData
            history = history.filter(odm_subject_id__isnull=False)
        subject_ids = scope.subject_ids()
        if subject_ids is not None:
            history = history.filter(odm_subject_id__in=subject_ids)
        return history

    def items(self, identifiers: bool) -> tuple[Item, ...]:
        return _visible(self.group.items if self.group else self.form.items, identifiers)


def audited_models(forms: list[ExportForm]) -> list[Audited]:
    found = []
    for form in forms:
        found.append(Audited(form, None, len(found)))
        for group in form.children:
            if group.model:
                found.append(Audited(form, group, len(found)))
    return found


def _stored_attname(model, form: ExportForm, item_name: str) -> str:
    """The column of an item stored as a plain field of ``model`` (for repeat keys), or ""."""
    item = next((i for i in form.items if i.name == item_name), None)
    if item is None or not isinstance(item.source, str) or "." in item.source:
        return ""
    try:
        return model._meta.get_field(item.source).attname
    except FieldDoesNotExist:
        return ""


def signed_in(audited: list[Audited]) -> tuple[Signed, ...]:
    """The signed forms among the exported ones (their signatures go in the file)."""
    names = {entry.form.name for entry in audited}
    return tuple(signed for signed in SIGNED if signed.form_name in names)


def users_in(scope: Scope, audited: list[Audited]) -> set:
    """Ids of every user who made a history row or a signature in scope (None: no user)."""
    found: set = set()
    for entry in audited:
        rows = _history_in_scope(entry, scope).order_by().values_list("history_user_id", flat=True)
        found.update(rows.distinct())
    for signed in signed_in(audited):
        found.update(
            _signatures(signed, scope).order_by().values_list("signer_id", flat=True).distinct()
        )
    return found


def _history_in_scope(entry: Audited, scope: Scope) -> models.QuerySet:
    """The history rows of ``entry.history(scope)``, found without its per-row subquery of a
    child row's subject: a child row is in scope when its parent has a history row in scope
    (a semi-join, instead of the parent's latest history row looked up row by row)."""
    if entry.group is None:
        return entry.history(scope)
    history = entry.model.history.all()
    subject_ids = scope.subject_ids()
    if subject_ids is None:
        return history
    parent = f"{entry.group.parent_field}_id__in"
    if entry.form.subject_path == "pk":
        return history.filter(**{parent: subject_ids})
    parents = Audited(entry.form, None, entry.rank).history(scope).order_by().values("id")
    return history.filter(**{parent: parents})


def _signatures(signed: Signed, scope: Scope) -> models.QuerySet:
    subject = _subject_expression(signed.form, history=False).name
    signatures = signed.model._default_manager.annotate(
        odm_subject_id=F(f"{signed.parent_field}__{subject}")
    )
    subject_ids = scope.subject_ids()
    if subject_ids is not None:
        signatures = signatures.filter(odm_subject_id__in=subject_ids)
    return signatures


# --- writing elements ----------------------------------------------------------------------------


def _item_data(parent, oid: str, value) -> None:
    text = odm_value(value)
    if text is not None:
        etree.SubElement(parent, "ItemData", ItemOID=oid, Value=text)


def _signature(parent, signed: Signed, signature, location: str, usernames: dict) -> None:
    element = etree.SubElement(parent, "Signature")
    etree.SubElement(element, "UserRef", UserOID=user_oid(usernames.get(signature.signer_id)))
    etree.SubElement(element, "LocationRef", LocationOID=location)
    etree.SubElement(
        element, "SignatureRef", SignatureOID=signature_oid(signed.form, signature.kind)
    )
    etree.SubElement(element, "DateTimeStamp").text = _datetime(signature.signed_at)


def _audit_record(parent, row, audited: Audited, location: str, usernames: dict) -> None:
    element = etree.SubElement(parent, "AuditRecord")
    etree.SubElement(element, "UserRef", UserOID=user_oid(usernames.get(row.history_user_id)))
    etree.SubElement(element, "LocationRef", LocationOID=location)
    etree.SubElement(element, "DateTimeStamp").text = _datetime(row.history_date)
    if row.history_change_reason:
        etree.SubElement(element, "ReasonForChange").text = _text(row.history_change_reason)
    etree.SubElement(element, "SourceID").text = f"{audited.label}:{row.history_id}"


# --- snapshot ------------------------------------------------------------------------------------


@dataclass
class _Group:
    """One item group of a form as written: its items (the visible ones), their OIDs, its key."""

    oid: str
    items: tuple[Item, ...]
    oids: tuple[str, ...]
    key: int | None  # position of the key item (domain key, child key) among the items
    group: ChildGroup | None = None

    @cached_property
    def start(self) -> str:
        """The start tag's text, unclosed (repeat keys follow)."""
        return f'<ItemGroupData ItemGroupOID="{_xml_attribute(self.oid)}"'

    @cached_property
    def prefixes(self) -> tuple[str, ...]:
        return tuple(_item_prefix(oid) for oid in self.oids)

    @cached_property
    def readers(self) -> tuple[Callable[[object], object], ...]:
        return tuple(item.reader for item in self.items)


def _group_layout(form: ExportForm, group: ChildGroup | None, identifiers: bool) -> _Group:
    items = _visible(group.items if group else form.items, identifiers)
    key_name = _key_item(form, group)
    key = next((n for n, item in enumerate(items) if key_name and item.name == key_name), None)
    oids = tuple(item_oid(form, item, group) for item in items)
    return _Group(group_oid(form, group), items, oids, key, group)


@dataclass
class _Layout:
    form: ExportForm
    oid: str
    event: Event
    main: _Group
    children: list[_Group]
    values_path: _ValuesPath | None = None

    @classmethod
    def of(cls, form: ExportForm, identifiers: bool) -> _Layout:
        main = _group_layout(form, None, identifiers)
        children = [_group_layout(form, group, identifiers) for group in form.children]
        layout = cls(form, form_oid(form), event_of(form), main, children)
        layout.values_path = _ValuesPath.of(layout)
        return layout


def _lookup(model: type[models.Model], source) -> str | None:
    """The ORM lookup of an item's source when it is a path of relations ending on a stored
    value (``term.meddra_code`` -> ``term__meddra_code``), else None (a function, a property,
    or a path ending on a relation)."""
    if not isinstance(source, str):
        return None
    if source == "pk":
        return "pk"
    *path, last = source.split(".")
    for part in path:
        try:
            relation = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not relation.is_relation or relation.many_to_many or relation.one_to_many:
            return None
        model = relation.related_model
    try:
        stored = model._meta.get_field(last)
    except FieldDoesNotExist:
        return None
    return None if stored.is_relation or not stored.concrete else source.replace(".", "__")


@dataclass
class _ValuesPath:
    """A form whose items are all stored values: read as rows of values, not model instances
    (with its child groups' rows merged in by parent): the fast path of large forms."""

    lookups: list[str]
    children: list[tuple[type[models.Model], str, list[str]]]  # model, parent field, lookups

    @classmethod
    def of(cls, layout: _Layout) -> _ValuesPath | None:
        form = layout.form
        lookups = [_lookup(form.model_class(), item.source) for item in layout.main.items]
        if None in lookups:
            return None
        children = []
        for child in layout.children:
            model = child.group.model_class()
            if model is None or not child.group.parent_field:
                return None
            found = [_lookup(model, item.source) for item in child.items]
            if None in found:
                return None
            children.append((model, child.group.parent_field, found))
        return cls(lookups, children)


@dataclass
class _Row:
    """A record read as values (the fast path)."""

    odm_subject_id: int
    pk: int
    values: tuple
    children: list[list[tuple]] = field(default_factory=list)  # per group: (pk, values) rows


def _ordered(queryset: models.QuerySet, form: ExportForm) -> models.QuerySet:
    subject = _subject_expression(form, history=False)
    queryset = queryset.annotate(odm_subject_id=subject).filter(odm_subject_id__isnull=False)
    return queryset.order_by("odm_subject_id", *form.ordering)


def _value_parents(layout: _Layout, queryset: models.QuerySet) -> models.QuerySet:
    """The scoped records of a values-path form, with their subject, ordered by subject then id."""
    subject = _subject_expression(layout.form, history=False)
    parents = queryset.prefetch_related(None).select_related(None)
    parents = parents.annotate(odm_subject_id=subject).filter(odm_subject_id__isnull=False)
    return parents.order_by("odm_subject_id", "pk")


def _value_children(model, parent_field: str, parents: models.QuerySet) -> models.QuerySet:
    """The child rows of the exported records (every row of each exported record)."""
    return model._default_manager.filter(**{f"{parent_field}__in": parents.values("pk")})


def _value_rows(layout: _Layout, queryset: models.QuerySet) -> Iterator[_Row]:
    """The form's records as values, ordered by subject then id, each with its child rows (read
    in the same order, one query per group, and matched by (subject, parent))."""
    path = layout.values_path
    subject = _subject_expression(layout.form, history=False)
    parents = _value_parents(layout, queryset)
    child_streams = []
    for model, parent_field, lookups in path.children:
        children = _value_children(model, parent_field, parents)
        parent_subject = subject.name if layout.form.subject_path != "pk" else "pk"
        children = children.annotate(
            odm_subject_id=F(f"{parent_field}__{parent_subject}"), odm_parent_id=F(parent_field)
        ).order_by("odm_subject_id", "odm_parent_id", "pk")
        rows = children.values_list("odm_subject_id", "odm_parent_id", "pk", *lookups)
        child_streams.append(_Peek(records.stream(rows)))
    for row in records.stream(parents.values_list("odm_subject_id", "pk", *path.lookups)):
        record = _Row(row[0], row[1], row[2:])
        for stream in child_streams:
            record.children.append(stream.take((row[0], row[1])))
        yield record


class _Peek:
    """Child rows ordered by (subject, parent): ``take(key)`` returns the rows of ``key``,
    skipping any row of a parent that is not exported."""

    def __init__(self, rows: Iterable[tuple]):
        self.rows = iter(rows)
        self.head = next(self.rows, None)

    def take(self, key: tuple[int, int]) -> list[tuple]:
        found = []
        while self.head is not None and self.head[:2] <= key:
            if self.head[:2] == key:
                found.append((self.head[2], self.head[3:]))
            self.head = next(self.rows, None)
        return found


# --- snapshot: PostgreSQL writes the FormData of the values-path forms ---------------------------
#
# On PostgreSQL a values-path form (the adverse events and their causality: the bulk of the file)
# is not rebuilt element by element in Python: the database writes each record's ``FormData`` as
# the very text lxml would have written (same element and attribute order, same value formats,
# same escaping), and the stream puts that text in its place in the subject's ``SubjectData``.
# The scope is the form's scoped queryset (``records.records``): its SQL, from Django, is the
# inner query. A type the SQL does not format exactly as ``odm_value`` (a float: Python's repr)
# keeps the form on the Python path, which stays the reference (and SQLite's path).

SQL_FRAGMENTS = True  # False: every database takes the Python path (tests compare both)
FRAGMENT_CHUNK = 32  # subjects fetched at a time (a subject's adverse events: ~40 kB of text)
_NOT_XML_SQL = "E'" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF'"
_TO_ESCAPE_SQL = (
    "E'[&<>\"\\n\\r\\t" + "".join(f"\\x{c:02x}" for c in _NOT_XML_CODES) + "\\uFFFE\\uFFFF]'"
)
_INTEGER_TYPES = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_TEXT_TYPES = {"CharField", "TextField", "SlugField", "EmailField", "URLField"}


@dataclass(frozen=True)
class _Fragment:
    """The ``FormData`` of a subject's records as XML text, written by the database."""

    odm_subject_id: int
    pk: int  # the first record's
    text: str


def _sql_literal(text: str) -> str:
    """A constant of the generated SQL ('%' doubled: the query has parameters)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _xml_attribute(text: str) -> str:
    """``text`` escaped as libxml2 escapes an attribute value."""
    for char, entity in _ATTRIBUTE_ENTITIES:
        text = text.replace(char, entity)
    return text


_ATTRIBUTE_ENTITIES = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
    ("\t", "&#9;"),
)


def _sql_escaped(column: str) -> str:
    """SQL of a text column as ``_text`` then libxml2's attribute escaping write it."""
    expression = f"translate({column}, {_NOT_XML_SQL}, '')"
    for char, entity in _ATTRIBUTE_ENTITIES:
        source = {"\n": "E'\\n'", "\r": "E'\\r'", "\t": "E'\\t'"}.get(char, _sql_literal(char))
        expression = f"replace({expression}, {source}, {_sql_literal(entity)})"
    return expression


def _stored_field(model: type[models.Model], lookup: str) -> models.Field:
    if lookup == "pk":
        return model._meta.pk
    *path, last = lookup.split("__")
    for part in path:
        model = model._meta.get_field(part).related_model
    return model._meta.get_field(last)


def _sql_value(column: str, model_field: models.Field) -> str | None:
    """SQL of ``odm_value`` of a column: the value's ODM text (escaped), NULL when there is no
    value; None when the SQL cannot write the type exactly as Python does."""
    kind = model_field.get_internal_type()
    if kind == "BooleanField":
        return f"(CASE {column} WHEN true THEN '1' WHEN false THEN '0' END)"
    if kind in _INTEGER_TYPES or kind == "DecimalField":
        return f"({column})::text"
    if kind == "DateField":
        return f"to_char({column}, 'YYYY-MM-DD')"
    if kind == "DateTimeField" and settings.USE_TZ:
        text = f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        return f"replace({text}, '.000000Z', 'Z')"  # isoformat: no fraction when it is 0
    if kind in _TEXT_TYPES:
        return _sql_escaped(f"nullif({column}, '')")
    return None


def _sql_group(start: str, items: str) -> str:
    """SQL of an ``ItemGroupData`` from the SQL of its start tag (no end) and of its items."""
    # ``items`` once: a CTE's column is the expression itself when the planner inlines it.
    return f"coalesce({start} || '>' || nullif({items}, '') || '</ItemGroupData>', {start} || '/>')"


def _sql_items(group: _Group, model, lookups: list[str]) -> str | None:
    """SQL of a row's ``ItemData`` elements from its columns ``c0``, ``c1``... ('' if none).
    Text is escaped only in the rare row where a text value has a character to escape (or to
    drop): one pattern test per row instead of eight functions per value."""
    fields = [_stored_field(model, lookup) for lookup in lookups]
    texts = [f"c{n}" for n, f in enumerate(fields) if f.get_internal_type() in _TEXT_TYPES]
    plain, escaped = [], []
    for number, (oid, model_field) in enumerate(zip(group.oids, fields, strict=True)):
        value = _sql_value(f"c{number}", model_field)
        if value is None:
            return None
        start = _sql_literal(f'<ItemData ItemOID="{_xml_attribute(oid)}" Value="')
        escaped.append(f"coalesce({start} || {value} || '\"/>', '')")
        if f"c{number}" in texts:
            value = f"nullif(c{number}, '')"
        plain.append(f"coalesce({start} || {value} || '\"/>', '')")
    if not plain:
        return "''"
    if not texts:
        return " || ".join(plain)
    return (
        f"(CASE WHEN concat({', '.join(texts)}) ~ {_TO_ESCAPE_SQL} THEN {' || '.join(escaped)} "
        f"ELSE {' || '.join(plain)} END)"
    )


def _sql_key(group: _Group, model, lookups: list[str]) -> str:
    """SQL of ``_repeat_key`` of a row: its key item's text, or its id. A text key is escaped
    only in the rare row that has a character to escape (the drug of each causality row: the
    escaping functions on every row were a sixth of the adverse events' time)."""
    if group.key is None:
        return "(pk)::text"
    column = f"c{group.key}"
    model_field = _stored_field(model, lookups[group.key])
    value = _sql_value(column, model_field)
    if model_field.get_internal_type() in _TEXT_TYPES:
        value = (
            f"(CASE WHEN {column} ~ {_TO_ESCAPE_SQL} THEN {value} ELSE nullif({column}, '') END)"
        )
    return f"coalesce(nullif({value}, ''), (pk)::text)"


def _sql_columns(count: int) -> str:
    return ", ".join(f"c{n}" for n in range(count))


def _fragment_query(
    layout: _Layout, queryset: models.QuerySet, part: tuple[int, int] | None = None
) -> tuple[str, tuple] | None:
    """The SQL writing the scoped records' ``FormData`` (subject id, first id, the text of its
    records in id order), one row per subject in subject order; None when a type keeps the form
    on the Python path.

    The records are sorted on their values (``OFFSET 0``: before the text is made, not the
    wide text); each record's child rows are read by its id (``LATERAL``: the index on the
    foreign key, in the records' order), as the Python path reads every child of an exported
    record. ``part`` (k, n): only the subjects whose id is k modulo n (one of n queries that
    share the work)."""
    path = layout.values_path
    form_model = layout.form.model_class()
    items = _sql_items(layout.main, form_model, path.lookups)
    if items is None:
        return None
    parents = _value_parents(layout, queryset)
    if part is not None:
        parents = parents.alias(odm_part=F("odm_subject_id") % part[1]).filter(odm_part=part[0])
    parent_sql, params = parents.values_list(
        "odm_subject_id", "pk", *path.lookups
    ).query.sql_with_params()
    params = list(params)
    head = _sql_literal(f'<FormData FormOID="{_xml_attribute(layout.oid)}"')
    if layout.form.repeating:
        head += f" || ' FormRepeatKey=\"' || {_sql_key(layout.main, form_model, path.lookups)}"
        head += " || '\"'"
    main_start = _sql_literal(f'<ItemGroupData ItemGroupOID="{_xml_attribute(layout.main.oid)}"')
    texts = [f"{head} || '>'", _sql_group(main_start, items)]
    joins = []
    for number, (group, (model, parent_field, lookups)) in enumerate(
        zip(layout.children, path.children, strict=True)
    ):
        child_items = _sql_items(group, model, lookups)
        if child_items is None:
            return None
        child_sql, child_params = (
            model._default_manager.values_list(parent_field, "pk", *lookups)
            .order_by()
            .query.sql_with_params()
        )
        params += child_params
        start = _sql_literal(
            f'<ItemGroupData ItemGroupOID="{_xml_attribute(group.oid)}" ItemGroupRepeatKey="'
        )
        start += f" || {_sql_key(group, model, lookups)} || '\"'"
        joins.append(
            f"LEFT JOIN LATERAL (SELECT string_agg({_sql_group(start, child_items)}, '' "
            f"ORDER BY pk) AS xml FROM ({child_sql}) AS g(parent, pk, "
            f"{_sql_columns(len(lookups))}) WHERE g.parent = p.pk) AS g{number} ON true"
        )
        texts.append(f"coalesce(g{number}.xml, '')")
    texts.append("'</FormData>'")
    sql = (
        f"SELECT p.odm_subject_id, p.pk, {' || '.join(texts)} "
        f"FROM ({parent_sql} OFFSET 0) AS p(odm_subject_id, pk, {_sql_columns(len(path.lookups))}) "
        f"{' '.join(joins)} ORDER BY p.odm_subject_id, p.pk"
    )
    # One row per subject, its records' text in order: the stream handles a subject's twenty
    # adverse events as one piece of text, not twenty rows (fetched, merged, joined one by one).
    sql = (
        "SELECT f.odm_subject_id, min(f.pk), string_agg(f.text, '' ORDER BY f.pk) "
        f"FROM ({sql}) AS f(odm_subject_id, pk, text) "
        "GROUP BY f.odm_subject_id ORDER BY f.odm_subject_id"
    )
    return sql, tuple(params)


def _fragments(
    layout: _Layout, queryset: models.QuerySet, threaded: bool = False
) -> Iterator[_Fragment] | None:
    """The records' ``FormData`` written by PostgreSQL, or None (the Python path). ``threaded``
    and outside a transaction: ``background.threads()`` queries share the subjects, each read
    ahead by a thread on its own connection (``exports.background``), merged back in subject
    order."""
    if not SQL_FRAGMENTS or connections[queryset.db].vendor != "postgresql":
        return None
    if layout.form.subject_path == "pk":
        return None
    whole = _fragment_query(layout, queryset)
    if whole is None:
        return None
    if not threaded or not background.usable(queryset.db):
        return _fragment_rows(queryset.db, *whole)
    n = background.threads()
    parts = [
        _as_fragments(
            background.rows_ahead(
                queryset.db, *_fragment_query(layout, queryset, (k, n)), chunk=FRAGMENT_CHUNK
            )
        )
        for k in range(n)
    ]
    return heapq.merge(*parts, key=attrgetter("odm_subject_id"))


def _as_fragments(rows: Iterable[tuple]) -> Iterator[_Fragment]:
    for subject_id, pk, text in rows:
        yield _Fragment(subject_id, pk, text)


def _fragment_rows(alias: str, sql: str, params: tuple) -> Iterator[_Fragment]:
    with (
        records.without_jit(alias),
        connections[alias].chunked_cursor() as cursor,  # server-side: memory stays flat
    ):
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FRAGMENT_CHUNK):
            for subject_id, pk, text in rows:
                yield _Fragment(subject_id, pk, text)


def _tagged(stream: Iterable, index: int) -> Iterator[tuple[int, int, object]]:
    for obj in stream:
        yield obj.odm_subject_id, index, obj


def _by_subject(streams: list[Iterable]) -> Iterator[tuple[int, list]]:
    """Merge streams each ordered by ``odm_subject_id``: (subject id, [(stream index, obj)])."""
    tagged = [_tagged(stream, index) for index, stream in enumerate(streams)]
    merged = heapq.merge(*tagged, key=lambda entry: entry[0])
    for subject_id, group in itertools.groupby(merged, key=lambda entry: entry[0]):
        yield subject_id, [(index, obj) for _, index, obj in group]


_ESCAPE = re.compile('[&<>"\n\r\t]')
_SPECIAL = re.compile(_ESCAPE.pattern[:-1] + _NOT_XML.pattern[1:])  # to escape or to drop


def _attribute(text: str) -> str:
    """``text`` as an attribute value (libxml2's escaping; ``text`` is valid XML already)."""
    return _xml_attribute(text) if _ESCAPE.search(text) else text


def _item_prefix(oid: str) -> str:
    return f'<ItemData ItemOID="{_xml_attribute(oid)}" Value="'


_PLAIN: dict[type, Callable[[object], str]] = {  # their ODM text has nothing to escape
    kind: write for kind, write in _FORMATS.items() if kind is not str
}


def _group_text(layout: _Group, values, attrs: str = "") -> str:
    """An ``ItemGroupData`` as text: what lxml writes of the same element (the snapshot is
    written as text: building ~100 elements per subject was most of its time)."""
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
        return layout.values_path is not None and layout.form.name not in self.signed

    def _stream(self, layout: _Layout, threaded: bool) -> Iterable:
        queryset = self.scope.records(layout.form)
        if self._values_path(layout):
            return _fragments(layout, queryset, threaded) or _value_rows(layout, queryset)
        return records.stream(_ordered(queryset, layout.form))

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
            yield self._subject(subjects[0], entries)

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


def _repeat_key(key, fallback) -> str:
    return odm_value(key) or str(fallback)


# --- archival ------------------------------------------------------------------------------------


@dataclass
class _Archived:
    """How the items of one audited model are read from its history rows."""

    item: Item
    oid: str
    read: Callable[[object], object]
    on_instance: bool  # a property of the record: read from the record rebuilt from the row


@dataclass
class _Plan:
    audited: Audited
    items: list[_Archived]
    related: list[str]
    attnames: list[str] = field(default_factory=list)
    lookups: list[str] | None = None  # all items are stored values: rows read as values

    @property
    def needs_instance(self) -> bool:
        return any(entry.on_instance for entry in self.items)


HISTORY_HEAD = (
    "odm_subject_id",
    "history_id",
    "history_date",
    "history_type",
    "history_user_id",
    "history_change_reason",
    "id",
)


def _history_rows(rows: Iterable[tuple], child: bool) -> Iterator[_HistoryRow]:
    for row in rows:
        yield _HistoryRow(row, child)


class _HistoryRow:
    """A history row read as values (the fast path): its head, and its items' values."""

    __slots__ = (*HISTORY_HEAD, "odm_parent_key", "values")

    def __init__(self, row: tuple, child: bool):
        for name, value in zip(HISTORY_HEAD, row, strict=False):
            setattr(self, name, value)
        start = len(HISTORY_HEAD) + child
        self.odm_parent_key = row[start - 1] if child else None
        self.values = row[start:]


def _related_path(history_model, source: str) -> str | None:
    """The select_related path of ``a.b.c`` (``a__b``), or None if it is not a chain of
    relations of the history row."""
    parts = source.split(".")[:-1]
    model = history_model
    for part in parts:
        try:
            relation = model._meta.get_field(part)
        except FieldDoesNotExist:
            return None
        if not relation.is_relation:
            return None
        model = relation.related_model
    return "__".join(parts)


def _plan(audited: Audited, identifiers: bool) -> _Plan:
    history_model = audited.model.history.model
    model = audited.model
    plan = _Plan(audited, [], [], [f.attname for f in model._meta.concrete_fields])
    for item in audited.items(identifiers):
        oid = item_oid(audited.form, item, audited.group)
        source = item.source
        if callable(source):
            continue  # a function of the record now: in the snapshot only
        first = source.split(".")[0]
        if first == "pk":
            plan.items.append(_Archived(item, oid, attrgetter(model._meta.pk.attname), False))
            continue
        try:
            history_model._meta.get_field(first)
        except FieldDoesNotExist:
            plan.items.append(_Archived(item, oid, item.value, True))  # a property
            continue
        path = _related_path(history_model, source)
        if path is None:
            continue
        if path:
            plan.related.append(path)
        plan.items.append(_Archived(item, oid, item.value, False))
    if not plan.needs_instance and audited.form.subject_path != "pk":
        lookups = [
            "id" if e.item.source == "pk" else _lookup(history_model, e.item.source)
            for e in plan.items
        ]
        plan.lookups = None if None in lookups else lookups
    return plan


def _instance(row, plan: _Plan):
    model = plan.audited.model
    values = {name: getattr(row, name) for name in plan.attnames if hasattr(row, name)}
    return model(**values)


def _values(row, plan: _Plan) -> list:
    instance = _instance(row, plan) if plan.needs_instance else None
    values = []
    for entry in plan.items:
        try:
            values.append(entry.read(instance if entry.on_instance else row))
        except (AttributeError, ObjectDoesNotExist, TypeError, ValueError):
            values.append(None)
    return values


@dataclass
class _SubjectState:
    key: str
    location: str
    events: set = field(default_factory=set)
    exists: bool = False


TRANSACTION = {"+": "Insert", "~": "Update", "-": "Remove"}


class Archive:
    def __init__(
        self,
        scope: Scope,
        locations: dict[int, str],
        usernames: dict[int, str],
        audited: list[Audited],
    ):
        self.scope = scope
        self.locations = locations
        self.usernames = usernames
        self.audited = audited
        self.signed = signed_in(audited)
        self.plans = [_plan(entry, scope.identifiers) for entry in audited]
        self.subject_rank = next(
            a.rank for a in audited if a.form.subject_path == "pk" and not a.group
        )
        self.subjects = 0
        self.audit_records = 0

    def _streams(self) -> list[Iterable]:
        streams = []
        for plan in self.plans:
            history = plan.audited.history(self.scope)
            history = history.order_by("odm_subject_id", "history_date", "history_id")
            if plan.lookups is not None:
                child = plan.audited.group is not None
                head = (*HISTORY_HEAD, "odm_parent_key") if child else HISTORY_HEAD
                rows = records.stream(history.values_list(*head, *plan.lookups))
                streams.append(_history_rows(rows, child))
                continue
            if plan.related:
                history = history.select_related(*plan.related)
            streams.append(records.stream(history))
        for signed in self.signed:
            signatures = _signatures(signed, self.scope).order_by(
                "odm_subject_id", "signed_at", "pk"
            )
            streams.append(records.stream(signatures))
        return streams

    def subject_data(self) -> Iterator[etree._Element]:
        for subject_id, entries in _by_subject(self._streams()):
            state = self._state(subject_id, entries)
            if state is None:
                continue
            self.subjects += 1
            yield from self._transactions(state, entries)

    def _state(self, subject_id: int, entries) -> _SubjectState | None:
        rows = [obj for index, obj in entries if index == self.subject_rank]
        if not rows:  # no history of the subject itself: its rows cannot be placed
            return None
        subject = rows[-1]
        site_id = getattr(
            subject, f"{access.site_lookup_of(self.audited[self.subject_rank].model)}_id"
        )
        location = self.locations.get(site_id)
        return _SubjectState(subject.subject_identifier, location) if location else None

    def _transactions(self, state: _SubjectState, entries) -> Iterator[etree._Element]:
        def moment(entry):
            index, obj = entry
            if index >= len(self.plans):
                return (obj.signed_at, index, obj.pk)
            return (obj.history_date, index, obj.history_id)

        previous: dict[tuple[int, int], list] = {}
        for index, obj in sorted(entries, key=moment):
            if index >= len(self.plans):
                yield self._signed(state, self.signed[index - len(self.plans)], obj)
                continue
            plan = self.plans[index]
            values = obj.values if isinstance(obj, _HistoryRow) else _values(obj, plan)
            before = previous.get((index, obj.id))
            previous[(index, obj.id)] = values
            self.audit_records += 1
            yield self._transaction(state, plan, obj, values, before)

    def _subject_data(self, state: _SubjectState, kind: str) -> etree._Element:
        element = etree.Element("SubjectData", SubjectKey=state.key, TransactionType=kind)
        return element

    def _event(self, state: _SubjectState, parent, form: ExportForm):
        event = event_of(form)
        kind = "Update" if event.oid in state.events else "Insert"
        state.events.add(event.oid)
        return etree.SubElement(
            parent, "StudyEventData", StudyEventOID=event.oid, TransactionType=kind
        )

    def _signed(self, state: _SubjectState, signed: Signed, signature) -> etree._Element:
        element = self._subject_data(state, "Update")
        etree.SubElement(element, "SiteRef", LocationOID=state.location)
        event = self._event(state, element, signed.form)
        form_data = etree.SubElement(
            event, "FormData", FormOID=form_oid(signed.form), TransactionType="Update"
        )
        _signature(form_data, signed, signature, state.location, self.usernames)
        return element

    def _transaction(self, state, plan: _Plan, row, values, before) -> etree._Element:
        audited = plan.audited
        kind = TRANSACTION[row.history_type]
        is_subject = audited.rank == self.subject_rank
        if is_subject and kind == "Remove":
            element = self._subject_data(state, "Remove")
            _audit_record(element, row, audited, state.location, self.usernames)
            etree.SubElement(element, "SiteRef", LocationOID=state.location)
            state.events.clear()
            return element
        subject_kind = kind if is_subject and kind == "Insert" else "Update"
        element = self._subject_data(state, subject_kind)
        etree.SubElement(element, "SiteRef", LocationOID=state.location)
        event = self._event(state, element, audited.form)
        form_kind = kind if audited.group is None else "Update"
        form_data = etree.SubElement(
            event, "FormData", self._form_attrs(audited, row, values, form_kind)
        )
        if audited.group is None and kind == "Remove":
            _audit_record(form_data, row, audited, state.location, self.usernames)
            return element
        attrs = {"ItemGroupOID": group_oid(audited.form, audited.group)}
        if audited.group is not None:
            attrs["ItemGroupRepeatKey"] = self._child_key(plan, row, values)
        attrs["TransactionType"] = kind
        group_data = etree.SubElement(form_data, "ItemGroupData", attrs)
        _audit_record(group_data, row, audited, state.location, self.usernames)
        if kind != "Remove":
            self._items(group_data, plan, values, before if kind == "Update" else None)
        return element

    def _form_attrs(self, audited: Audited, row, values, kind: str) -> dict:
        attrs = {"FormOID": form_oid(audited.form)}
        if audited.form.repeating:
            if audited.group is None:
                key = next(
                    (
                        v
                        for e, v in zip(self.plans[audited.rank].items, values, strict=True)
                        if e.item.name == audited.form.domain_key
                    ),
                    None,
                )
                attrs["FormRepeatKey"] = _repeat_key(key, row.id)
            else:
                attrs["FormRepeatKey"] = _repeat_key(row.odm_parent_key, row.odm_parent_key)
        attrs["TransactionType"] = kind
        return attrs

    @staticmethod
    def _child_key(plan: _Plan, row, values) -> str:
        key = next(
            (
                v
                for e, v in zip(plan.items, values, strict=True)
                if e.item.name == plan.audited.group.key
            ),
            None,
        )
        return _repeat_key(key, row.id)

    @staticmethod
    def _items(parent, plan: _Plan, values: list, before: list | None) -> None:
        for position, (entry, value) in enumerate(zip(plan.items, values, strict=True)):
            if before is None:
                _item_data(parent, entry.oid, value)
            elif before[position] != value:
                text = odm_value(value)
                if text is None:
                    etree.SubElement(parent, "ItemData", ItemOID=entry.oid, IsNull="Yes")
                else:
                    etree.SubElement(parent, "ItemData", ItemOID=entry.oid, Value=text)


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
                    "ClinicalData", StudyOID=study_oid(), MetaDataVersionOID=mdv.get("OID")
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
