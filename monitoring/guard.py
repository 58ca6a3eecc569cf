"""The one write guard: ``core.audit`` calls ``guard_write`` before every audited save, delete and
bulk insert, inside the write's transaction, whatever path made it.

Locked data refuse every write. Frozen data refuse every write but the query workflow's and the
fields a model names in ``freeze_exempt_fields`` (a serious AE's report time, which regulation
does not let wait for an unfreeze). An allowed change clears SDV and voids the casebook signature
in the same transaction, each with a history record saying why.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone

from core.audit import audited_save

from .models import CasebookSignature, SourceDataVerification
from .state import DataLocked, LockLevel, anything_marked, read, state_of, target_of

CHUNK = 500  # targets read in one query (a bulk insert may hold thousands)


def guard_write(instances, *, user, reason: str = "", deleting: bool = False) -> None:
    if len(instances) > CHUNK and not anything_marked():
        return  # a bulk write where nothing is frozen, locked, verified or signed: no effect
    targets = [t for t in map(target_of, instances) if t is not None]
    for start in range(0, len(targets), CHUNK):
        _guard(targets[start : start + CHUNK], user=user, reason=reason, deleting=deleting)


def _guard(targets, *, user, reason: str, deleting: bool) -> None:
    found = read(targets)
    for target in targets:
        state = state_of(target, found)
        if state is None:
            continue
        level, sentence = state
        if level == LockLevel.LOCKED:
            raise DataLocked(sentence)
        if not (target.is_query or (not deleting and _freeze_exempt(target.instance))):
            raise DataLocked(sentence)
    changed = [t for t in targets if t.is_source_data]
    verified = {ref for t in changed for ref in t.refs} & found.verified
    if verified:
        _clear_verifications(verified, user=user, reason=reason)
    signed = {t.subject_id for t in changed} & found.signed
    if signed:
        _void_casebook_signatures(signed, user=user, reason=reason)


def _freeze_exempt(instance) -> bool:
    """Does this save of ``instance`` change nothing but its model's ``freeze_exempt_fields``
    (at least one of them), on a record whose ``freeze_exemption_applies()`` as saved and as
    written? Compared with the row in the database (read only on frozen data: rare)."""
    model = type(instance)
    exempt = set(getattr(model, "freeze_exempt_fields", ()))
    if not exempt or instance.pk is None:
        return False
    saved = model._base_manager.filter(pk=instance.pk).first()
    if saved is None or not (
        saved.freeze_exemption_applies() and instance.freeze_exemption_applies()
    ):
        return False
    changed = {
        f.name
        for f in model._meta.concrete_fields
        if not (getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False))
        and getattr(saved, f.attname) != getattr(instance, f.attname)
    }
    return bool(changed) and changed <= exempt


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
