"""What a Dataset-JSON dataset is, for every app that maps its CRF to a CDISC domain.

``exports.sdtm`` maps the subject, eligibility and AE CRFs (DM, DS, IE, AE, SUPPAE); a CRF app
declares its own domains (instances of ``Dataset``, usually in ``<app>/sdtm.py``) as the
``datasets`` of its ``contributions`` module: the Dataset-JSON export, its API and
``export_datasets`` list them with no change to the exports app.

A dataset's ``rows(user)`` streams the rows ``user`` may see (``core.access.scope_to_user``;
``user`` None is the operator at the server's shell: every site), as lists in column order, with
no direct identifier (USUBJID, never initials or the date of birth).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from . import access


@dataclass(frozen=True)
class Column:
    """One Dataset-JSON column: ``data_type`` is the logical dataType (string, integer, decimal,
    date, datetime, ...), ``key`` the keySequence."""

    name: str
    label: str
    data_type: str = "string"
    length: int | None = None
    key: int | None = None
    target: str | None = None  # targetDataType ("decimal": a decimal exchanged as a string)

    def metadata(self, dataset: str) -> dict:
        meta: dict[str, str | int] = {
            "itemOID": f"IT.{dataset}.{self.name}",
            "name": self.name,
            "label": self.label,
            "dataType": self.data_type,
        }
        if self.target:
            meta["targetDataType"] = self.target
        if self.length:
            meta["length"] = self.length
        if self.key:
            meta["keySequence"] = self.key
        return meta


class Dataset:
    """A Dataset-JSON dataset: ``rows(user)`` streams lists in the order of ``columns``."""

    name: str = ""
    label: str = ""
    columns: tuple[Column, ...] = ()

    def rows(self, user) -> Iterator[list]:
        raise NotImplementedError

    def count(self, user) -> int | None:
        """The number of rows, when one query tells it (else ``None``: counted while spooled)."""
        return None

    def json_lines(self, user) -> Iterator[str] | None:
        """The rows already encoded as ``encode(row)`` gives them, in blocks of one or more rows
        joined by "\\n", when the database can build them (``None``: use ``rows``)."""
        return None

    def _ordered(self, row: dict) -> list:
        return [row.get(column.name) for column in self.columns]


# --- what every subject's domain shares ----------------------------------------------------------


def study_id() -> str:
    """STUDYID, also the ODM Study OID: ``settings.EDC_STUDY_ID``."""
    return getattr(settings, "EDC_STUDY_ID", "") or "TORI-BEV-HCC-3"


def usubjid(subject_identifier: str | None) -> str | None:
    return f"{study_id()}-{subject_identifier}" if subject_identifier else None


def identity_columns(domain_length: int | None = 2) -> tuple[Column, ...]:
    """STUDYID, DOMAIN (``domain_length`` None: an analysis dataset has none), USUBJID."""
    domain = (Column("DOMAIN", "Domain Abbreviation", length=domain_length),)
    return (
        Column("STUDYID", "Study Identifier", length=len(study_id()), key=1),
        *(domain if domain_length else ()),
        Column("USUBJID", "Unique Subject Identifier", length=len(study_id()) + 21, key=2),
    )


def for_user(queryset, user):
    """The rows ``user`` may see; ``user`` None is the operator at the server's shell."""
    return queryset if user is None else access.scope_to_user(queryset, user)


def decimal_text(value) -> str | None:
    return None if value is None else format(Decimal(value).normalize(), "f")


def iso_text(value) -> str | None:
    return value.isoformat() if value else None
