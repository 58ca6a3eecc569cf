"""Reads of the eligibility CRF and its signatures. Pages, admin, API and the apps above read
through these; ``services`` writes."""

from __future__ import annotations

from dataclasses import dataclass

from core.audit import history_rows
from subjects.models import Subject

from .criteria import CRITERIA
from .models import (
    STRATIFICATION_FIELDS,
    EligibilityAssessment,
    EligibilitySignature,
    PriorTherapy,
)
from .signed_data import hash_matches


def get_assessment(subject: Subject) -> EligibilityAssessment | None:
    return EligibilityAssessment.objects.filter(subject=subject).select_related("subject").first()


def with_prior_therapies(assessment: EligibilityAssessment | None):
    """The assessment with its prior therapy rows read once (a page evaluates it, hashes it and
    lists the rows: one query for the rows, not one each time)."""
    if assessment is not None and assessment.pk:
        assessment.use_prior_therapies(assessment.prior_therapies.all())
    return assessment


def prior_therapies(assessment: EligibilityAssessment | None) -> list[PriorTherapy]:
    """The assessment's prior systemic therapies, in order."""
    return assessment.prior_therapy_list() if assessment is not None else []


def active_signature(assessment: EligibilityAssessment) -> EligibilitySignature | None:
    """The latest signature not voided (whether it still matches the data: ``valid_signature``).
    Read from the assessment's signatures when a list prefetched them (the admin's), without a
    query per row."""
    prefetched = getattr(assessment, "_prefetched_objects_cache", {}).get("signatures")
    if prefetched is not None:
        live = [signature for signature in prefetched if not signature.void]
        return max(live, key=lambda signature: (signature.signed_at, signature.pk), default=None)
    return assessment.signatures.filter(void=False).order_by("-signed_at", "-pk").first()


def signature_matches(signature: EligibilitySignature, assessment: EligibilityAssessment) -> bool:
    """Not void, and the data it covers are still the ones signed."""
    return not signature.void and hash_matches(signature, assessment)


def valid_signature(assessment: EligibilityAssessment) -> EligibilitySignature | None:
    """The active signature if it still matches the data, computed now: a page never shows a
    signature as valid beside data it did not sign."""
    signature = active_signature(assessment)
    if signature is not None and signature_matches(signature, assessment):
        return signature
    return None


@dataclass(frozen=True)
class SignatureRow:
    signature: EligibilitySignature
    state: str


def signature_history(assessment: EligibilityAssessment) -> list[SignatureRow]:
    """Every signature on the assessment, newest first, with its state as of now."""
    rows = []
    for signature in assessment.signatures.select_related("signer").order_by("-signed_at", "-pk"):
        if signature.void:
            when = f" {signature.voided_at:%Y-%m-%d %H:%M} UTC" if signature.voided_at else ""
            state = f"Void{when}: {signature.void_reason}"
        elif not hash_matches(signature, assessment):
            state = "No longer matches the data: the investigator must sign again"
        else:
            state = "Valid"
        rows.append(SignatureRow(signature, state))
    return rows


def assessment_audit_trail(assessment: EligibilityAssessment) -> list[dict]:
    """The last 100 changes to the assessment, its prior therapy rows and its signatures, newest
    first."""
    rows = history_rows(
        assessment.history.select_related("history_user").order_by("-history_date")[:100]
    )
    for model in (PriorTherapy, EligibilitySignature):
        history = model.history.filter(assessment_id=assessment.pk).select_related("history_user")
        rows += history_rows(history.order_by("-history_date")[:100])
    for row in rows:
        row.setdefault("what", "")
    return sorted(rows, key=lambda r: r["when"], reverse=True)


def fields_the_evaluation_needs() -> frozenset[str]:
    """The CRF fields some criterion or the stratification reads: marked as needed on the form
    before the first save."""
    return frozenset(f for c in CRITERIA for f in c.fields) | frozenset(STRATIFICATION_FIELDS)


@dataclass(frozen=True)
class StillMissing:
    code: str  # a criterion code, or "Stratification"
    reason: str
    fields: tuple[tuple[str, str], ...]  # (field name, label) still empty


def still_missing(assessment: EligibilityAssessment, evaluation) -> list[StillMissing]:
    """What the saved CRF still lacks, criterion by criterion, with the empty fields each needs
    (the page links them); the stratification factors last."""
    meta = EligibilityAssessment._meta
    fields_of = {c.code: c.fields for c in CRITERIA}

    def empty(names):
        return tuple(
            (name, str(meta.get_field(name).verbose_name))
            for name in names
            if name in {f.name for f in meta.concrete_fields}
            and getattr(assessment, name) in (None, "")
        )

    found = [
        StillMissing(r.code, r.reason, empty(fields_of.get(r.code, ()))) for r in evaluation.missing
    ]
    if evaluation.stratification_missing:
        found.append(
            StillMissing(
                "Stratification",
                ", ".join(evaluation.stratification_missing),
                empty(STRATIFICATION_FIELDS),
            )
        )
    return found
