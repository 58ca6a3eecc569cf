"""The one write guard: ``core.audit`` calls ``guard_write`` (this app's ``guard_write`` hook)
before every audited save, delete and bulk insert, inside the write's transaction, whatever path
made it (services, web forms, admin, API, Celery tasks, management commands).

* Locked data (the record, the subject's casebook or the study) refuse every write, data queries
  and their answers included. Frozen data refuse every write but the data queries' (raised,
  answered, closed: the query workflow goes on while the site can no longer edit).
* An allowed change to a record's data clears its source data verification (and that of the
  record it belongs to), and voids the subject's casebook signature, in the same transaction,
  each with a history record saying why.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from core.audit import audited_save

from .models import CasebookSignature, SourceDataVerification
from .state import DataLocked, LockLevel, read, state_of, target_of

CHUNK = 500  # targets read in one query (a bulk insert may hold thousands)


def guard_write(instances, *, user, reason: str = "") -> None:
    targets = [t for t in map(target_of, instances) if t is not None]
    for start in range(0, len(targets), CHUNK):
        _guard(targets[start : start + CHUNK], user=user, reason=reason)


def _guard(targets, *, user, reason: str) -> None:
    found = read(targets)
    for target in targets:
        state = state_of(target, found)
        if state is None:
            continue
        level, sentence = state
        if level == LockLevel.LOCKED or not target.is_query:
            raise DataLocked(sentence)
    changed = [t for t in targets if t.is_source_data]
    verified = {ref for t in changed for ref in t.refs} & found.verified
    if verified:
        _clear_verifications(verified, user=user, reason=reason)
    signed = {t.subject_id for t in changed} & found.signed
    if signed:
        _void_casebook_signatures(signed, user=user, reason=reason)


def _why(reason: str) -> str:
    reason = (reason or "").strip()
    return (
        f"The data changed after verification: {reason}"
        if reason
        else ("The data changed after verification.")
    )


def _clear_verifications(refs, *, user, reason: str) -> None:
    now = timezone.now()
    for ct_id, object_id in sorted(refs):
        sdv = SourceDataVerification.objects.select_for_update().get(
            content_type=ContentType.objects.get_for_id(ct_id), object_id=object_id
        )
        sdv.verified = False
        sdv.cleared_at = now
        sdv.cleared_reason = _why(reason)
        audited_save(
            sdv,
            user=user,
            reason=sdv.cleared_reason,
            validate_only=("verified", "cleared_at", "cleared_reason"),
        )


def _void_casebook_signatures(subject_ids, *, user, reason: str) -> None:
    why = "The casebook changed after it was signed" + (
        f": {reason.strip()}" if (reason or "").strip() else "."
    )
    for signature in CasebookSignature.objects.select_for_update().filter(
        subject_id__in=subject_ids, void=False
    ):
        void_casebook_signature(signature, user=user, reason=why)


def void_casebook_signature(signature: CasebookSignature, *, user, reason: str):
    signature.void = True
    signature.voided_at = timezone.now()
    signature.void_reason = reason
    return audited_save(
        signature, user=user, reason=reason, validate_only=("void", "voided_at", "void_reason")
    )
