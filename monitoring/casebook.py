"""A subject's casebook: its source data records, and the hash a casebook signature binds to.

The casebook is every record of the subject's source data: the models that declare
``subject_lookup`` (a CRF added later joins by declaring it), but the data queries, the
eligibility signature and this app's own records (``state.NOT_SOURCE_DATA``). Its hash is the
SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8; Django's JSON encoder for dates
and decimals) of each model's rows in primary key order, as eligibility's signature hashes the
data it covers (``eligibility.signed_data``). A field updated automatically on every save
(``auto_now``) is left out: a save that changes nothing else changes nothing signed.
"""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.audit import subject_models

from .state import NOT_SOURCE_DATA


def casebook_models() -> list[type[models.Model]]:
    return [
        m
        for m in subject_models()
        if m._meta.label_lower not in NOT_SOURCE_DATA and m._meta.app_label != "monitoring"
    ]


def records_of(model: type[models.Model], subject_pk) -> models.QuerySet:
    lookup = model.subject_lookup
    return model._base_manager.filter(**{"pk" if lookup == "pk" else lookup: subject_pk})


def _signed_fields(model) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields if not getattr(f, "auto_now", False)]


def casebook_data(subject) -> dict[str, list[dict]]:
    """Every record of the subject's casebook: {"app_label.model": [row, ...]}."""
    return {
        model._meta.label_lower: list(
            records_of(model, subject.pk).order_by("pk").values(*_signed_fields(model))
        )
        for model in casebook_models()
    }


def data_hash(subject) -> str:
    text = json.dumps(
        casebook_data(subject),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        cls=DjangoJSONEncoder,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def hash_matches(signature) -> bool:
    """Does the casebook signature still cover the casebook as it is now?"""
    return signature.data_hash == data_hash(signature.subject)
