"""The risk-based source data verification plan (the setting ``SDV_PLAN``).

The records to verify are the top records of the subject's casebook (a model whose
``subject_lookup`` is ``"pk"`` or its own key to the subject: the subject and consent, the
eligibility assessment, the allocation, each AE, and every CRF added later; a record's child rows,
like an AE's causality or the prior therapies, are verified with it).

* ``full``: kinds of record verified in full (``"app_label.model"``), or only where a field is
  true (``"adverse_events.adverseevent:serious"``);
* ``sample_percent``: of every other record, this share, chosen reproducibly: a record is in the
  sample when the SHA-256 of "<subject id>:<app_label.model>:<record id>", read as a number,
  falls in the first ``sample_percent`` hundredths. No random state: the same record is always
  in or out, on every page, in every process.
"""

from __future__ import annotations

import hashlib
from functools import cache

from django.conf import settings
from django.db import models

from .casebook import casebook_models

FULL = "full"
SAMPLE = "sample"


def plan() -> dict:
    configured = getattr(settings, "SDV_PLAN", {}) or {}
    percent = int(configured.get("sample_percent", 0))
    if not 0 <= percent <= 100:
        raise ValueError("SDV_PLAN sample_percent must be between 0 and 100.")
    full: dict[str, str] = {}
    for entry in configured.get("full", ()):
        label, _, condition = entry.lower().partition(":")
        full[label] = condition
    return {"full": full, "sample_percent": percent}


@cache
def _is_top_record(model: type[models.Model]) -> bool:
    lookup = model.subject_lookup
    return lookup == "pk" or "__" not in lookup


def sdv_models() -> list[type[models.Model]]:
    """The kinds of record a monitor verifies, in layer order."""
    return [m for m in casebook_models() if _is_top_record(m)]


def in_sample(subject_id: int, label: str, object_id: int, percent: int) -> bool:
    digest = hashlib.sha256(f"{subject_id}:{label}:{object_id}".encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def condition_field(model: type[models.Model], the_plan: dict) -> str:
    """The field that decides whether records of ``model`` are all verified ("" if none)."""
    return the_plan["full"].get(model._meta.label_lower, "")


def requirement_of(
    label: str, object_id: int, subject_id: int, condition_value, the_plan: dict
) -> str:
    """Why the plan asks for the verification of a record: ``FULL``, ``SAMPLE``, or ``""``
    (``condition_value``: the value of its kind's condition field, if it has one)."""
    if label in the_plan["full"] and (not the_plan["full"][label] or condition_value):
        return FULL
    if in_sample(subject_id, label, object_id, the_plan["sample_percent"]):
        return SAMPLE
    return ""


def requirement(record: models.Model, subject_id: int, the_plan: dict | None = None) -> str:
    the_plan = the_plan or plan()
    condition = condition_field(type(record), the_plan)
    value = getattr(record, condition) if condition else None
    return requirement_of(type(record)._meta.label_lower, record.pk, subject_id, value, the_plan)
