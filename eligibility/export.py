"""What the sponsor exports of the eligibility CRF: every item (each lab as reported, its unit,
and the SI value with its UCUM unit), the evaluation, each criterion's result, the prior systemic
therapy rows, and the investigator's signature (``core.export_spec``)."""

from dataclasses import replace

from core.export_spec import ChildGroup, Item, ItemType, SignedForm, model_items, subject_form

from . import units
from .criteria import CRITERIA, CriterionOutcome
from .models import EligibilityAssessment, EligibilitySignature, PriorTherapy, SignatureKind
from .services import ELIGIBLE_MEANING, SCREEN_FAILURE_MEANING, evaluate_eligibility
from .signed_data import CRF_FIELDS, hash_matches


def evaluation_of(assessment):
    """The evaluation against the planned randomization date, computed once per record."""
    cached = getattr(assessment, "_export_evaluation", None)
    if cached is None:
        cached = assessment._export_evaluation = evaluate_eligibility(assessment)
    return cached


def signature_of(assessment):
    """The latest signature that is not void and still matches the data (prefetched)."""
    cached = getattr(assessment, "_export_signature", False)
    if cached is False:
        live = [s for s in assessment.signatures.all() if not s.void]
        live.sort(key=lambda s: (s.signed_at, s.pk), reverse=True)
        cached = live[0] if live and hash_matches(live[0], assessment) else None
        assessment._export_signature = cached
    return cached


def _signed(attribute):
    def value(assessment):
        signature = signature_of(assessment)
        return getattr(signature, attribute) if signature else None

    return value


OUTCOMES = tuple((o.value, o.value.title()) for o in CriterionOutcome)


def _si_unit(name: str) -> str:
    """The UCUM code of a lab's SI unit ("" for a ratio: INR)."""
    unit = units.LABS[name].si_unit
    return unit.code if unit.symbol else ""


def _crf_items() -> tuple[Item, ...]:
    """The CRF's items; an SI lab value carries its unit."""
    return tuple(
        replace(item, unit=_si_unit(item.name)) if item.name in units.LABS else item
        for item in model_items(EligibilityAssessment, CRF_FIELDS)
    )


FORMS = [
    subject_form(
        name="eligibility",
        label="Eligibility",
        model="eligibility.EligibilityAssessment",
        oid="ELIG",
        changed_with=(("eligibility.EligibilitySignature", "assessment"),),
        prefetch_related=("signatures", "prior_therapies"),
        items=(
            *_crf_items(),
            Item(
                "result",
                "Eligibility result",
                ItemType.TEXT,
                lambda a: evaluation_of(a).status.value,
                codelist=(
                    ("eligible", "Eligible"),
                    ("not_eligible", "Not eligible"),
                    ("incomplete", "Incomplete"),
                ),
            ),
            Item(
                "signature_kind",
                "Signed as",
                ItemType.TEXT,
                _signed("kind"),
                codelist=tuple((k.value, k.label) for k in SignatureKind),
            ),
            Item("signed_by", "Signed by", ItemType.TEXT, _signed("signer_name")),
            Item("signed_at", "Signed at (UTC)", ItemType.DATETIME, _signed("signed_at")),
            Item(
                "signature_meaning", "Meaning of the signature", ItemType.TEXT, _signed("meaning")
            ),
            Item(
                "signed_data_hash",
                "SHA-256 of the signed data",
                ItemType.TEXT,
                _signed("data_hash"),
            ),
            *model_items(EligibilityAssessment, ("updated",)),
        ),
        children=(
            ChildGroup(
                name="criteria",
                label="Criterion results",
                rows=lambda a: evaluation_of(a).results,
                key="code",
                items=(
                    Item(
                        "code",
                        "Criterion",
                        ItemType.TEXT,
                        "code",
                        length=4,
                        codelist=tuple((c.code, c.text[:200]) for c in CRITERIA),
                    ),
                    Item(
                        "kind",
                        "Inclusion or exclusion",
                        ItemType.TEXT,
                        "kind",
                        codelist=(("inclusion", "Inclusion"), ("exclusion", "Exclusion")),
                    ),
                    Item(
                        "outcome",
                        "Result",
                        ItemType.TEXT,
                        lambda r: r.outcome.value,
                        codelist=OUTCOMES,
                    ),
                    Item("reason", "Why", ItemType.TEXT, "reason"),
                ),
            ),
            ChildGroup(
                name="prior_therapies",
                label="Prior systemic therapies",
                related="prior_therapies",
                model="eligibility.PriorTherapy",
                parent_field="assessment",
                items=model_items(PriorTherapy, PriorTherapy.SIGNED_FIELDS),
            ),
        ),
    ),
]

# The investigator's sign-off of the CRF: ODM SignatureDefs and Signature elements.
SIGNED = [
    SignedForm(
        "eligibility",
        EligibilitySignature,
        "assessment",
        (
            (SignatureKind.ELIGIBLE.value, ELIGIBLE_MEANING),
            (SignatureKind.SCREEN_FAILURE.value, SCREEN_FAILURE_MEANING),
        ),
        signature_of,
    ),
]
