"""What the sponsor exports of monitoring and the data lock (``core.export_spec``): each record's
source data verification, each record's and each casebook's freeze/lock state, and the casebook
signatures (with the hash of the data they cover)."""

from core.export_spec import (
    Item,
    ItemType,
    SignedForm,
    model_items,
    record_type_item,
    subject_form,
)

from .models import (
    CASEBOOK_MEANING,
    CasebookSignature,
    CasebookState,
    RecordState,
    SourceDataVerification,
)

FORMS = [
    subject_form(
        name="source-data-verification",
        label="Source data verification",
        model="monitoring.SourceDataVerification",
        oid="SDV",
        repeating=True,
        select_related=("content_type", "verified_by"),
        then_by=("pk",),
        items=(
            record_type_item(),
            *model_items(SourceDataVerification, ("object_id", "record_label", "verified")),
            Item("verified_by", "Verified by", ItemType.TEXT, "verified_by.username"),
            *model_items(SourceDataVerification, ("verified_at", "cleared_at", "cleared_reason")),
        ),
    ),
    subject_form(
        name="record-lock-states",
        label="Record freeze and lock",
        model="monitoring.RecordState",
        oid="RLOCK",
        repeating=True,
        select_related=("content_type", "changed_by"),
        then_by=("pk",),
        items=(
            record_type_item(),
            *model_items(RecordState, ("object_id", "record_label", "state")),
            Item("changed_by", "Changed by", ItemType.TEXT, "changed_by.username"),
            *model_items(RecordState, ("changed_at", "reason")),
        ),
    ),
    subject_form(
        name="casebook-states",
        label="Casebook freeze and lock",
        model="monitoring.CasebookState",
        oid="CBLOCK",
        select_related=("changed_by",),
        items=(
            *model_items(CasebookState, ("state",)),
            Item("changed_by", "Changed by", ItemType.TEXT, "changed_by.username"),
            *model_items(CasebookState, ("changed_at", "reason")),
        ),
    ),
    subject_form(
        name="casebook-signatures",
        label="Casebook signatures",
        model="monitoring.CasebookSignature",
        oid="CBSIG",
        repeating=True,
        select_related=("signer",),
        then_by=("signed_at",),
        items=(
            Item("signer", "Signer", ItemType.TEXT, "signer.username"),
            *model_items(
                CasebookSignature,
                (
                    "signer_name",
                    "signed_at",
                    "meaning",
                    "data_hash",
                    "void",
                    "voided_at",
                    "void_reason",
                ),
            ),
        ),
    ),
]

# The investigator's casebook sign-off, on the subject's record: in the ODM archival file (each
# signature at its time, as AdminData's SignatureDef says); the snapshot has the subject's data.
SIGNED = [
    SignedForm(
        "subjects",
        CasebookSignature,
        "subject",
        ((CasebookSignature.kind, CASEBOOK_MEANING),),
    ),
]
