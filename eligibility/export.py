"""What the sponsor exports of the eligibility CRF: every item, the evaluation, each criterion's
result, and the investigator's signature (``core.export_spec``)."""

from core.export_spec import ChildGroup, ExportForm, Item, ItemType, model_items

from .criteria import CriterionOutcome
from .models import EligibilityAssessment, SignatureKind
from .services import evaluate_eligibility
from .signed_data import CRF_FIELDS, data_hash


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
        cached = live[0] if live and live[0].data_hash == data_hash(assessment) else None
        assessment._export_signature = cached
    return cached


def _signed(attribute):
    def value(assessment):
        signature = signature_of(assessment)
        return getattr(signature, attribute) if signature else None

    return value


OUTCOMES = tuple((o.value, o.value.title()) for o in CriterionOutcome)

FORMS = [
    ExportForm(
        name="eligibility",
        label="Eligibility",
        model="eligibility.EligibilityAssessment",
        oid="ELIG",
        select_related=("subject__site",),
        prefetch_related=("signatures",),
        ordering=("subject__site__code", "subject__sequence"),
        items=(
            Item("subject", "Subject", ItemType.TEXT, "subject.subject_identifier"),
            Item("site", "Site code", ItemType.TEXT, "subject.site.code"),
            *model_items(EligibilityAssessment, CRF_FIELDS),
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
                    Item("code", "Criterion", ItemType.TEXT, "code", length=4),
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
        ),
    ),
]
