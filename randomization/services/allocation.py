"""Allocation: the subject takes the next free slot of its stratum, exactly once.

``randomize`` runs in one transaction: access, the subject row locked and re-read, eligibility
confirmed on the randomization date (the site's date), the stratum locked and its lowest free
slot taken, the allocation recorded and the subject marked randomized. Locks are always taken
subject -> stratum, so two requests never deadlock; the ``OneToOne`` constraints are the
database's last word. A failed transaction leaves its slot free; a lock held longer than
``RANDOMIZATION_LOCK_TIMEOUT`` gives ``RandomizationBusy``, never a tied-up worker.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils import timezone

from core import access
from core.audit import attached_reason, guard_write
from core.site_time import date_at, today_at
from eligibility import services as eligibility
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .. import listgen
from ..models import Allocation, Slot, Stratum, factor_labels
from ..selectors import active_list
from .errors import (
    AlreadyRandomized,
    NoActiveList,
    NotEligibleForRandomization,
    RandomizationBusy,
    RandomizationError,
    StratumChanged,
    StratumExhausted,
)


def _stratum_key_of(subject: Subject, today) -> tuple:
    """Every rule about the subject, checked once: returns its stratum key (the factors), or
    raises. The caller checks the list (``NoActiveList``) and takes the slot."""
    identifier = subject.subject_identifier
    subject_services.ensure_consented(subject)
    if subject.status != SubjectStatus.SCREENING:
        # An allocation moves the subject out of screening in the same transaction.
        existing = Allocation.objects.filter(subject=subject).first()
        if existing is not None:
            raise AlreadyRandomized(
                f"{identifier} is already randomized: randomization number "
                f"{existing.randomization_number}, arm {existing.arm} ({existing.arm_label}), "
                f"on {existing.allocated_at:%Y-%m-%d %H:%M} UTC."
            )
    try:
        factors = eligibility.randomization_factors(subject, today)
    except eligibility.NotRandomizable as exc:
        raise NotEligibleForRandomization(f"{identifier} cannot be randomized: {exc}") from exc
    key = (
        bool(factors.macrovascular_or_extrahepatic),
        int(factors.ecog),
        bool(factors.prior_locoregional_therapy),
    )
    if key not in listgen.STRATUM_BY_KEY:  # the protocol and the list's design disagree
        raise NotEligibleForRandomization(
            f"{identifier} cannot be randomized: the list has no stratum {factor_labels(*key)}."
        )
    return key


def _no_active_list() -> NoActiveList:
    return NoActiveList(
        "There is no active randomization list: the statistician must generate one "
        "(manage.py generate_randomization_list) before anyone can be randomized."
    )


@dataclass(frozen=True)
class Preview:
    """What the confirmation page shows before randomizing: the stratum derived from the CRF."""

    stratum: str  # e.g. "S3"
    label: str

    @classmethod
    def of(cls, key: tuple) -> Preview:
        return cls(f"S{listgen.STRATUM_BY_KEY[key].number}", factor_labels(*key))


def preview_randomization(subject: Subject, user) -> Preview:
    """Check (without locking or allocating) that ``user`` can randomize ``subject`` now."""
    access.require_data_entry(user, subject)
    key = _stratum_key_of(subject, today_at(subject.site))
    if active_list() is None:
        raise _no_active_list()
    return Preview.of(key)


def _confirm_stratum(subject: Subject, key: tuple, confirmed_stratum: str | None) -> None:
    derived = Preview.of(key)
    if confirmed_stratum is not None and confirmed_stratum != derived.stratum:
        raise StratumChanged(
            f"The stratification data changed since this page was opened: the stratum is now "
            f"{derived.stratum} ({derived.label}). Check it and confirm again. "
            f"{subject.subject_identifier} was not randomized.",
            stratum=derived.stratum,
            label=derived.label,
        )


def _lock_free_slot(key: tuple, identifier: str) -> Slot:
    """Lock the stratum row of the active list (only that row: ``of=self``), then take the
    lowest free slot of the stratum. Requests for the same stratum queue at the lock."""
    stratum = (
        Stratum.objects.select_for_update(of=("self",))
        .filter(
            rlist__active=True,
            macrovascular_or_extrahepatic=key[0],
            ecog=key[1],
            prior_locoregional_therapy=key[2],
        )
        .order_by("pk")
        .first()
    )
    if stratum is None:
        raise _no_active_list()
    # A new statement after the lock is granted: under READ COMMITTED it sees the slots taken
    # by the transaction that held the lock before us (a subquery in the locking statement
    # would not).
    slot = Slot.objects.filter(stratum=stratum, allocation__isnull=True).order_by("sequence")
    slot = slot.first()
    if slot is None:
        raise StratumExhausted(
            f"Stratum {stratum.code} ({stratum.label}) has no free slot left in "
            f"randomization list #{stratum.rlist_id}: the statistician must extend the list. "
            f"{identifier} was not randomized."
        )
    slot.stratum = stratum
    return slot


LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


def _bounded_lock_wait(queryset):
    """``queryset`` (the transaction's first locking read) with RANDOMIZATION_LOCK_TIMEOUT set
    for the rest of the transaction by the statement itself (``SET LOCAL`` as a filter that is
    always true, evaluated on the row before it is locked): no statement of its own."""
    if connection.vendor != "postgresql" or settings.RANDOMIZATION_LOCK_TIMEOUT <= 0:
        return queryset
    timeout = f"{int(settings.RANDOMIZATION_LOCK_TIMEOUT * 1000)}ms"
    return queryset.filter(
        RawSQL("set_config('lock_timeout', %s, true) IS NOT NULL", [timeout], BooleanField())
    )


def _is_lock_timeout(exc: OperationalError) -> bool:
    return getattr(exc.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE


def randomize(subject: Subject, user, *, confirmed_stratum: str | None = None) -> Allocation:
    """Allocate ``subject`` the next free slot of its stratum; returns the allocation.

    ``confirmed_stratum`` is the stratum code the user saw and confirmed (e.g. "S3"): if the CRF
    changed meanwhile, ``StratumChanged`` refuses under the lock and nothing is allocated.
    ``RandomizationBusy``: a lock was not granted within RANDOMIZATION_LOCK_TIMEOUT seconds.
    """
    access.require_data_entry(user, subject)
    locking = (
        Subject.objects.select_related("site").select_for_update(of=("self",)).filter(pk=subject.pk)
    )
    with _busy_if_lock_timeout(subject.subject_identifier):
        allocation, locked = _randomize(locking, user, confirmed_stratum)
    # The caller's instance reflects the new status (no extra query).
    subject.status, subject.status_date, subject.updated = (
        locked.status,
        locked.status_date,
        locked.updated,
    )
    return allocation


def randomize_visible(
    identifier: str, user, *, confirmed_stratum: str | None = None
) -> tuple[Subject, Allocation]:
    """``randomize`` for the web view: the subject ``user`` sees by ``identifier`` is read once,
    under its lock (``Subject.DoesNotExist`` when it is not theirs to see). Frozen or locked
    data are refused by the write guard in the transaction (``DataLocked``), not before it."""
    from subjects.selectors import visible_subjects

    locking = (
        visible_subjects(user).select_for_update(of=("self",)).filter(subject_identifier=identifier)
    )
    with _busy_if_lock_timeout(identifier):
        allocation, locked = _randomize(locking, user, confirmed_stratum, role_checked=False)
    return locked, allocation


@contextmanager
def _busy_if_lock_timeout(identifier: str):
    try:
        yield
    except OperationalError as exc:
        if not _is_lock_timeout(exc):
            raise
        raise RandomizationBusy(
            "The randomization service is busy (another randomization is taking longer than "
            f"usual): {identifier} was not randomized. Try again in a moment."
        ) from exc


def _randomize(
    locking, user, confirmed_stratum: str | None, *, role_checked: bool = True
) -> tuple[Allocation, Subject]:
    """The allocation, in one transaction: ``locking`` (a queryset of one subject, read for
    update) is the transaction's first statement."""
    with transaction.atomic():
        locked = _bounded_lock_wait(locking).get()
        if not role_checked:
            access.require_data_entry_role(user, locked)
        today = today_at(locked.site)
        identifier = locked.subject_identifier
        key = _stratum_key_of(locked, today)
        _confirm_stratum(locked, key, confirmed_stratum)
        slot = _lock_free_slot(key, identifier)
        allocation = Allocation(
            subject=locked,
            slot=slot,
            stratum=slot.stratum,
            randomization_number=slot.randomization_number,
            arm=slot.arm,
            allocated_at=timezone.now(),  # after the locks: the order of the slots taken
            allocated_by=user,
            macrovascular_or_extrahepatic=key[0],
            ecog=key[1],
            prior_locoregional_therapy=key[2],
        )
        reason = f"Randomized: number {slot.randomization_number}, arm {slot.arm}"
        # A new record (no reason needed). Its field values are checked; its references and
        # uniqueness need no extra queries here: the rows were just read under lock, and the
        # database's OneToOne constraints are the last word.
        allocation.clean_fields(exclude=["subject", "slot", "stratum", "allocated_by"])
        # The data lock (core.audit) of both writes at once: the allocation and the subject's
        # new status.
        guard_write([allocation, locked], user=user, reason=reason)
        try:
            with attached_reason(allocation, user, ""):
                allocation.save()  # an error rolls the whole transaction back
        except IntegrityError as exc:  # only without row locks (SQLite)
            raise RandomizationError(
                f"{identifier} was not randomized: another randomization took place at the "
                "same moment. Reload the page and try again."
            ) from exc
        subject_services.mark_randomized(
            locked,
            user=user,
            on_date=date_at(allocation.allocated_at, locked.site),  # the randomization date
            reason=reason,
            guarded=True,
        )
    return allocation, locked
