"""The risk-based source data verification plan (the setting ``SDV_PLAN``).

The records to verify are the top records of the subject's casebook (a model whose
``subject_lookup`` is ``"pk"`` or its own key to the subject: the subject and consent, the
eligibility assessment, the allocation, each AE, and every CRF added later; a record's child rows,
like an AE's causality or the prior therapies, are verified with it).

* ``full``: kinds of record verified in full (``"app_label.model"``), or only where a field is
  true (``"adverse_events.adverseevent:serious"``);
* ``sample_percent``: of every other record, this share, chosen reproducibly: each record has a
  draw from 0 to 99, a hash of its subject's id, its kind and its own id, and is in the sample
  when its draw is below ``sample_percent``. No random state, nothing stored: the same record is
  always in or out, on every page, in every process, in Python (``sample_draw``) and in SQL
  (``SampleDraw``, the same integer arithmetic, which PostgreSQL and SQLite evaluate alike), so
  the worklist and the progress are counted and paged by the database.

The hash: with P = 2^31 - 1 and k the kind's salt (the first 28 bits of the SHA-256 of
"app_label.model"), x = (subject id x 1000003 + k) mod P, x = (x^2 + record id) mod P,
x = (x^2 + k) mod P, draw = x mod 100. Squaring twice mixes the ids (neighbouring records are
drawn independently: the share of a consecutive pair both in a 25 % sample is 1/16); every
intermediate value stays below 2^63, so neither database overflows or rounds. (Until this hash,
the draw was the SHA-256 of "<subject id>:<kind>:<record id>", which SQL cannot evaluate alike on
both databases: the records in the sample changed once, with the same share.)
"""

from __future__ import annotations

import hashlib
from functools import cache

from django.conf import settings
from django.db import models
from django.db.models import BooleanField, Expression, ExpressionWrapper, Q, Value
from django.db.models.lookups import LessThan

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


MODULUS = 2**31 - 1  # a prime: the squares below stay under 2^62
SUBJECT_FACTOR = 1000003


@cache
def kind_salt(label: str) -> int:
    """A number of the kind of record (28 bits of the SHA-256 of its label)."""
    return int(hashlib.sha256(label.encode()).hexdigest()[:7], 16)


def sample_draw(subject_id: int, label: str, object_id: int) -> int:
    """The record's draw, 0 to 99 (the module's docstring): ``SampleDraw`` in Python."""
    salt = kind_salt(label)
    x = (subject_id % MODULUS * SUBJECT_FACTOR + salt) % MODULUS
    x = (x * x + object_id % MODULUS) % MODULUS
    x = (x * x + salt) % MODULUS
    return x % 100


def in_sample(subject_id: int, label: str, object_id: int, percent: int) -> bool:
    return sample_draw(subject_id, label, object_id) < percent


class SampleDraw(Expression):
    """``sample_draw`` of each row in SQL: ``subject`` and ``record``, the expressions of the
    subject's id and the record's id, ``label`` the kind of record. Integer ``+ * %`` only (the
    same on PostgreSQL and SQLite for non-negative operands below 2^63)."""

    output_field = models.BigIntegerField()

    def __init__(self, subject, record, label: str):
        super().__init__()
        self.subject, self.record, self.salt = subject, record, kind_salt(label)

    def get_source_expressions(self):
        return [self.subject, self.record]

    def set_source_expressions(self, exprs):
        self.subject, self.record = exprs

    def as_sql(self, compiler, connection):
        subject_sql, subject_params = compiler.compile(self.subject)
        record_sql, record_params = compiler.compile(self.record)
        p, salt = MODULUS, self.salt
        x0 = f"((CAST({subject_sql} AS BIGINT) %% {p}) * {SUBJECT_FACTOR} + {salt}) %% {p}"
        x1 = f"(({x0}) * ({x0}) + CAST({record_sql} AS BIGINT) %% {p}) %% {p}"
        x2 = f"(({x1}) * ({x1}) + {salt}) %% {p}"
        # x0 appears four times and the record twice: their parameters (none for columns) too.
        params = (list(subject_params) * 2 + list(record_params)) * 2
        return f"((({x2}) %% 100))", params


def sample_expression(subject, record, label: str, percent: int):
    """A boolean SQL expression: is the row in the sample (``in_sample``)?"""
    if percent <= 0:
        return Value(False, output_field=BooleanField())
    if percent >= 100:
        return Value(True, output_field=BooleanField())
    return LessThan(SampleDraw(subject, record, label), percent)


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


def full_expression(model: type[models.Model], the_plan: dict):
    """A boolean SQL expression: does the plan verify the row in full (``FULL``)?"""
    label = model._meta.label_lower
    if label not in the_plan["full"]:
        return Value(False, output_field=BooleanField())
    condition = the_plan["full"][label]
    if not condition:
        return Value(True, output_field=BooleanField())
    return ExpressionWrapper(Q(**{condition: True}), output_field=BooleanField())


def required_expression(model: type[models.Model], subject, the_plan: dict):
    """A boolean SQL expression: does the plan ask for the row (``FULL`` or ``SAMPLE``)?
    ``subject``: the expression of the row's subject id."""
    label = model._meta.label_lower
    sample = sample_expression(subject, models.F("pk"), label, the_plan["sample_percent"])
    if label not in the_plan["full"]:
        return sample
    condition = the_plan["full"][label]
    if not condition:
        return Value(True, output_field=BooleanField())
    return ExpressionWrapper(Q(**{condition: True}) | Q(sample), output_field=BooleanField())
