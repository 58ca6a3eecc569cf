"""Monitoring and data lock rules: each action is one function here, audited, refused with a
sentence when the user (``core.access``) or the state of the data does not allow it.

Locking is refused while what it covers has unresolved queries (and, for a casebook or the
study, unsigned casebooks: ``lock_blockers``). Refusing writes to frozen or locked data is not
done here but in the one write guard (``guard``), which every audited write goes through.
"""

from __future__ import annotations

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from core import access
from core.audit import audited_save, clean_reason
from core.errors import DomainError, ReasonRequired
from eligibility.services import authenticate_signer
from queries.models import DataQuery
from subjects.models import Subject, SubjectStatus

from . import casebook
from .guard import void_casebook_signature
from .models import (
    CASEBOOK_MEANING,
    CasebookSignature,
    CasebookState,
    LockLevel,
    RecordState,
    SourceDataVerification,
    StudyLock,
)
from .sdv_plan import sdv_models
from .state import DataLocked, lock_state_of, target_of

# A casebook is signed at the end of the subject's participation.
FINAL_STATUSES = (
    SubjectStatus.SCREEN_FAILED,
    SubjectStatus.WITHDRAWN,
    SubjectStatus.DIED,
    SubjectStatus.COMPLETED,
)
BLOCKERS_LISTED = 10  # a study lock refusal names this many blockers of each kind, then counts


class MonitoringRefused(DomainError):
    """The monitoring or lock action is not possible now; the message says why."""


def _save_change(state, *, user, reason: str):
    """A freeze, lock or unlock: who, when and why are kept on the state itself (the lock
    console shows them) and the same reason in its audit trail."""
    state.changed_by = user
    state.changed_at = timezone.now()
    state.reason = reason
    return audited_save(state, user=user, reason=reason)


def subject_of(record: models.Model) -> Subject:
    target = target_of(record)
    if target is None or target.subject_id is None or not target.is_source_data:
        raise MonitoringRefused(f"A {type(record)._meta.verbose_name} is not a casebook record.")
    if isinstance(record, Subject):
        return record
    return Subject.objects.select_related("site").get(pk=target.subject_id)


def record_label(record: models.Model, subject: Subject | None = None) -> str:
    """A record as people name it: its own text when it names the subject."""
    subject = subject or subject_of(record)
    if isinstance(record, Subject):
        return f"Subject record of {subject.subject_identifier}"
    text = str(record)
    if subject.subject_identifier not in text:
        text = f"{subject.subject_identifier} {record._meta.verbose_name}"
    return text[:200]


def _ref(record: models.Model) -> tuple[ContentType, int]:
    return ContentType.objects.get_for_model(type(record)), record.pk


def _row_of_record(model, content_type: ContentType, object_id: int):
    """The record's one row of ``model`` (its SDV mark or its lock state), locked until the
    transaction ends; None while the record has none."""
    return (
        model.objects.select_for_update()
        .filter(content_type=content_type, object_id=object_id)
        .first()
    )


# --- source data verification ----------------------------------------------------------------


def verify_record(record: models.Model, *, user) -> SourceDataVerification:
    """The monitor has checked ``record`` (and its child rows) against the source documents."""
    if type(record) not in sdv_models() or record.pk is None:
        raise MonitoringRefused(
            f"A {type(record)._meta.verbose_name} is not verified on its own: verify the record "
            "it belongs to."
        )
    subject = subject_of(record)
    access.require_source_data_verifier(user, subject)
    state = lock_state_of(record)
    if state is not None and state[0] == LockLevel.LOCKED:
        raise DataLocked(state[1])
    content_type, object_id = _ref(record)
    with transaction.atomic():
        sdv = _row_of_record(SourceDataVerification, content_type, object_id)
        if sdv is not None and sdv.verified:
            raise MonitoringRefused(
                f"{sdv.record_label} is already verified (by {sdv.verified_by}, "
                f"{sdv.verified_at:%Y-%m-%d %H:%M} UTC)."
            )
        if sdv is None:
            sdv = SourceDataVerification(
                content_type=content_type, object_id=object_id, subject=subject
            )
        sdv.record_label = record_label(record, subject)
        sdv.verified = True
        sdv.verified_by = user
        sdv.verified_at = timezone.now()
        sdv.cleared_at = None
        sdv.cleared_reason = ""
        return audited_save(sdv, user=user, reason="Source data verified")


# --- freeze and lock ---------------------------------------------------------------------------

ACTIONS = {
    LockLevel.FROZEN: "Frozen",
    LockLevel.LOCKED: "Locked",
    LockLevel.OPEN: "Reopened",
}


def _reason_for(level: str, current: str, reason: str) -> str:
    """Unfreezing and unlocking need a reason; freezing and locking have a default one."""
    reason = clean_reason(reason)
    opening = (current == LockLevel.LOCKED and level != LockLevel.LOCKED) or (
        current == LockLevel.FROZEN and level == LockLevel.OPEN
    )
    if opening and not reason:
        word = "unlock" if current == LockLevel.LOCKED else "unfreeze"
        raise ReasonRequired(f"Give the reason to {word} the data.")
    return reason or f"{ACTIONS[level]} by data management"


def _reason_for_change(state, level: str, reason: str, *, what: str) -> str:
    """The reason a freeze/lock state change is saved with (``_reason_for``); refused when
    ``what`` is at ``level`` already."""
    current = state.state if state else LockLevel.OPEN
    if current == level:
        raise MonitoringRefused(f"{what} is already {LockLevel(level).label.lower()}.")
    return _reason_for(level, current, reason)


def _check_level(level: str) -> str:
    if level not in LockLevel.values:
        raise MonitoringRefused(f"Unknown lock state {level!r}: use open, frozen or locked.")
    return level


def unresolved_queries(**filters) -> models.QuerySet:
    return DataQuery.objects.unresolved().filter(**filters)


def _study_refusal() -> None:
    if StudyLock.objects.filter(locked=True).exists():
        raise DataLocked("The study is locked for analysis: unlock the study first.")


def set_record_state(record: models.Model, level: str, *, user, reason: str = "") -> RecordState:
    """Freeze, lock or reopen one casebook record (with its child rows)."""
    level = _check_level(level)
    access.require_freeze_and_lock(user)
    subject = subject_of(record)
    _study_refusal()
    content_type, object_id = _ref(record)
    with transaction.atomic():
        state = _row_of_record(RecordState, content_type, object_id)
        label = record_label(record, subject)
        reason = _reason_for_change(state, level, reason, what=label)
        if level == LockLevel.LOCKED:
            open_queries = unresolved_queries(content_type=content_type, object_id=object_id)
            if open_queries.exists():
                numbers = ", ".join(str(pk) for pk in open_queries.values_list("pk", flat=True))
                raise MonitoringRefused(
                    f"{label} has unresolved data queries ({numbers}): resolve them before "
                    "locking it."
                )
        if state is None:
            state = RecordState(content_type=content_type, object_id=object_id, subject=subject)
        state.record_label = label
        state.state = level
        return _save_change(state, user=user, reason=reason)


def casebook_signature(subject: Subject) -> CasebookSignature | None:
    """The subject's active casebook signature, if any (it may no longer match: ``is_valid``)."""
    return CasebookSignature.objects.filter(subject=subject, void=False).first()


def signature_is_valid(signature: CasebookSignature | None) -> bool:
    return signature is not None and not signature.void and casebook.hash_matches(signature)


def subject_lock_blockers(subject: Subject) -> list[str]:
    """What stands in the way of locking the subject's casebook, as sentences (none: it may be
    locked)."""
    blockers = []
    count = unresolved_queries(subject=subject).count()
    if count:
        blockers.append(f"{count} unresolved data quer{'y' if count == 1 else 'ies'}")
    signature = casebook_signature(subject)
    if signature is None:
        blockers.append("casebook not signed by the investigator")
    elif not casebook.hash_matches(signature):
        blockers.append("the casebook signature no longer matches the data")
    return blockers


def set_casebook_state(subject: Subject, level: str, *, user, reason: str = "") -> CasebookState:
    """Freeze, lock or reopen a subject's whole casebook."""
    level = _check_level(level)
    access.require_freeze_and_lock(user)
    _study_refusal()
    with transaction.atomic():
        subject = Subject.objects.select_for_update().select_related("site").get(pk=subject.pk)
        state = CasebookState.objects.select_for_update().filter(subject=subject).first()
        reason = _reason_for_change(state, level, reason, what=f"Subject {subject}")
        if level == LockLevel.LOCKED:
            blockers = subject_lock_blockers(subject)
            if blockers:
                raise MonitoringRefused(
                    f"Subject {subject} cannot be locked: {'; '.join(blockers)}."
                )
        if state is None:
            state = CasebookState(subject=subject)
        state.state = level
        return _save_change(state, user=user, reason=reason)


def study_lock() -> StudyLock | None:
    return StudyLock.objects.first()


def study_is_locked() -> bool:
    return StudyLock.objects.filter(locked=True).exists()


def _listed(shown: list[str], total: int, what: str) -> str:
    more = f" and {total - len(shown)} more" if total > len(shown) else ""
    return f"{total} {what} ({', '.join(shown)}{more})"


def study_lock_blockers(*, check_hashes: bool = True) -> list[str]:
    """What stands in the way of the study lock: every unresolved query, every subject whose
    casebook is not signed or whose signature no longer matches its data. Counted and the first
    ``BLOCKERS_LISTED`` of each kind named by the database, so that the lock console reads the
    same rows whatever the study's size (``check_hashes`` False: trust the signatures that no
    change voided; the lock itself recomputes every signed casebook's hash)."""
    blockers = []
    queries = unresolved_queries()
    if total := queries.count():
        shown = queries.order_by("subject__subject_identifier", "pk").values_list(
            "pk", "subject__subject_identifier"
        )[:BLOCKERS_LISTED]
        blockers.append(
            _listed(
                [f"query {pk} on {ident}" for pk, ident in shown], total, "unresolved data queries"
            )
        )
    signatures = CasebookSignature.objects.filter(void=False)
    unsigned = ~models.Exists(signatures.filter(subject=models.OuterRef("pk")))
    if check_hashes:
        changed = [
            s.subject_id
            for s in signatures.select_related("subject")
            if not casebook.hash_matches(s)
        ]
        unsigned |= models.Q(pk__in=changed)
    subjects = Subject.objects.filter(unsigned)
    if total := subjects.count():
        shown = subjects.order_by("site__code", "sequence").values_list(
            "subject_identifier", flat=True
        )[:BLOCKERS_LISTED]
        blockers.append(_listed(list(shown), total, "casebooks not signed"))
    return blockers


def lock_study(*, user, reason: str = "") -> StudyLock:
    """The database lock for analysis: refused while any query is unresolved or any casebook
    unsigned, with what stands in the way."""
    access.require_freeze_and_lock(user)
    with transaction.atomic():
        lock = StudyLock.objects.select_for_update().first()
        if lock is not None and lock.locked:
            raise MonitoringRefused("The study is already locked.")
        blockers = study_lock_blockers()
        if blockers:
            raise MonitoringRefused(f"The study cannot be locked: {'; '.join(blockers)}.")
        lock = lock or StudyLock()
        lock.locked = True
        return _save_change(
            lock, user=user, reason=clean_reason(reason) or "Database lock for analysis"
        )


def unlock_study(*, user, reason: str) -> StudyLock:
    """Reverse the database lock: a data manager, with a reason."""
    access.require_freeze_and_lock(user)
    reason = clean_reason(reason)
    if not reason:
        raise ReasonRequired("Give the reason to unlock the study.")
    with transaction.atomic():
        lock = StudyLock.objects.select_for_update().first()
        if lock is None or not lock.locked:
            raise MonitoringRefused("The study is not locked.")
        lock.locked = False
        return _save_change(lock, user=user, reason=reason)


# --- casebook sign-off -----------------------------------------------------------------------


def sign_off_refusal(subject: Subject) -> str | None:
    """Why the investigator may not sign the casebook now, or None."""
    if subject.status not in FINAL_STATUSES:
        return (
            f"{subject} is {subject.get_status_display().lower()}: a casebook is signed at the "
            "end of the subject's participation (completed, withdrawn, died or screen failed)."
        )
    signature = casebook_signature(subject)
    if signature is not None and casebook.hash_matches(signature):
        return "The casebook is already signed; any change to its data voids the signature."
    count = unresolved_queries(subject=subject).count()
    if count:
        return (
            f"{subject} has {count} unresolved data quer{'y' if count == 1 else 'ies'}: the "
            "casebook is signed once its data are complete and accurate."
        )
    return None


def sign_casebook(subject: Subject, *, user, password: str) -> CasebookSignature:
    """The investigator signs the casebook (password re-entered): "I have reviewed the data in
    this casebook and confirm it is complete and accurate", bound to the hash of its data."""
    authenticate_signer(subject, user, password)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().select_related("site").get(pk=subject.pk)
        state = lock_state_of(subject)
        if state is not None and state[0] == LockLevel.LOCKED:
            raise DataLocked(state[1])
        refusal = sign_off_refusal(subject)
        if refusal:
            raise MonitoringRefused(refusal)
        stale = casebook_signature(subject)
        if stale is not None:  # no longer matching: replaced by the new one
            void_casebook_signature(
                stale, user=user, reason="The casebook changed after it was signed; signed again."
            )
        signature = CasebookSignature(
            subject=subject,
            signer=user,
            signer_name=user.get_full_name() or user.get_username(),
            signed_at=timezone.now(),
            meaning=CASEBOOK_MEANING,
            data_hash=casebook.data_hash(subject),
        )
        return audited_save(signature, user=user, reason=CASEBOOK_MEANING)
