"""What an investigator's signature covers, and its hash: pure functions of the CRF and subject.

A signature is valid only while the hash of the data now equals the one it recorded; pages
check the hash (``hash_matches``) rather than trust a stored flag. What is covered is versioned
(``models.SIGNED_DATA_VERSION``, recorded per signature) and each signature is checked in its own
version, so older signatures stay valid over unchanged data.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from . import units
from .models import SIGNED_DATA_VERSION, EligibilityAssessment, PriorTherapy

# The CRF fields: everything the site enters, and the SI lab values computed from it (the
# signature covers them all).
CRF_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in EligibilityAssessment._meta.concrete_fields
    if f.name not in ("id", "subject", "created", "updated")
)
# Computed by ``services`` (the SI lab values), never entered; the rest is entered.
COMPUTED_FIELDS: tuple[str, ...] = units.LAB_NAMES
ENTERED_FIELDS: tuple[str, ...] = tuple(f for f in CRF_FIELDS if f not in COMPUTED_FIELDS)
ADDED_IN_VERSION_2 = frozenset(units.REPORTED_FIELDS + units.UNIT_FIELDS)
# Facts of the subject the criteria use: also covered by the signature.
SUBJECT_FACTS = (
    "subject_identifier",
    "sex",
    "date_of_birth",
    "age_at_screening",
    "consent_date",
    "consent_version",
)


def _canonical(value, field=None):
    if value is None:
        return None
    if isinstance(value, Decimal):
        places = getattr(field, "decimal_places", None)
        if places is not None:
            value = value.quantize(Decimal(1).scaleb(-places))
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def signed_fields(version: int = SIGNED_DATA_VERSION) -> tuple[str, ...]:
    """The CRF fields a signature of ``version`` covers."""
    if version >= 2:
        return CRF_FIELDS
    return tuple(f for f in CRF_FIELDS if f not in ADDED_IN_VERSION_2)


def prior_therapy_data(assessment: EligibilityAssessment) -> list[dict]:
    """The prior therapy rows as signed: their content, in a fixed order (no database ids)."""
    meta = PriorTherapy._meta
    return [
        {name: _canonical(getattr(row, name), meta.get_field(name)) for name in row.SIGNED_FIELDS}
        for row in assessment.prior_therapy_list()
    ]


def signed_data(assessment: EligibilityAssessment, version: int = SIGNED_DATA_VERSION) -> dict:
    """What a signature covers: the CRF fields, the subject facts the criteria use and (from
    version 2) the prior therapy rows."""
    meta = EligibilityAssessment._meta
    subject = assessment.subject
    data = {
        "assessment": {
            name: _canonical(getattr(assessment, name), meta.get_field(name))
            for name in signed_fields(version)
        },
        "subject": {name: _canonical(getattr(subject, name)) for name in SUBJECT_FACTS},
    }
    if version >= 2:
        data["prior_therapies"] = prior_therapy_data(assessment)
    return data


def data_hash(assessment: EligibilityAssessment, version: int = SIGNED_DATA_VERSION) -> str:
    """SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8) of ``signed_data``."""
    text = json.dumps(
        signed_data(assessment, version),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_matches(signature, assessment: EligibilityAssessment) -> bool:
    """Does ``signature`` (an ``EligibilitySignature``) still cover the data as they are now, in
    the version of the signed data it was made with?"""
    return signature.data_hash == data_hash(assessment, signature.data_version)
