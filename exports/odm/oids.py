"""The study's constants, its events and the OIDs of everything in the file.

OIDs: study ``EDC_STUDY_ID``; events ``SE.<NAME>`` (SCREENING, RANDOMIZATION, COMMON for any
other form); forms ``F.<code>``; item groups ``IG.<code>[.<CHILD>]`` (child groups beside the
form's own: ODM groups do not nest); items ``I.<code>[.<CHILD>].<ITEM>``; code lists ``CL.``;
units ``MU.``; sites ``LOC.<code>``; users ``USR.<username>`` (``USR.SYSTEM``: none recorded);
signatures ``SD.<code>.<KIND>``; ``MDV.`` + a hash of the metadata.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.export_spec import ChildGroup, ExportForm, Item

NS = "http://www.cdisc.org/ns/odm/v1.3"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
ODM_VERSION = "1.3.2"
SYSTEM_USER_OID = "USR.SYSTEM"
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
