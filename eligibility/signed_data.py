"""What an investigator's signature covers, and its hash: pure functions of the CRF and the subject.

A signature is valid only while ``data_hash`` of the data as they are now equals the hash it
recorded; services void it in the transaction that changes any of these data, and pages compute
its validity from the hash rather than trusting a stored flag alone.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal

from .models import EligibilityAssessment

# The CRF fields: everything the site enters (the signature covers them all).
CRF_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in EligibilityAssessment._meta.concrete_fields
    if f.name not in ("id", "subject", "created", "updated")
)
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


def signed_data(assessment: EligibilityAssessment) -> dict:
    """What a signature covers: the CRF fields and the subject facts the criteria use."""
    meta = EligibilityAssessment._meta
    subject = assessment.subject
    return {
        "assessment": {
            name: _canonical(getattr(assessment, name), meta.get_field(name)) for name in CRF_FIELDS
        },
        "subject": {name: _canonical(getattr(subject, name)) for name in SUBJECT_FACTS},
    }


def data_hash(assessment: EligibilityAssessment) -> str:
    """SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8) of ``signed_data``."""
    text = json.dumps(
        signed_data(assessment), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
