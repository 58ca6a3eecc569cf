"""Randomization rules: the list, allocation, the arm of a subject, mismatches, the balance report.

Allocation (``randomize``) runs in one transaction:

1. the user must be site staff or an investigator at the subject's site;
2. the subject row is locked (``select_for_update``), then re-read: it must be consented, not
   yet randomized, still in screening; the eligibility app confirms a signed, eligible assessment
   whose time windows hold today (``eligibility.services.check_randomizable``);
3. the stratum is derived from the CRF (``eligibility.services.stratification_factors``);
4. the stratum's row of the active list is locked, and the lowest free slot of the stratum
   (a slot no allocation points at) is taken;
5. the allocation is recorded (number, arm, time in UTC, user, stratification values used) and the
   subject becomes randomized (``subjects.services.mark_randomized``) before the commit.

Locks are always taken in the order subject → stratum, so two requests never deadlock; the
``OneToOne`` constraints (one allocation per subject, one per slot) are the database's last word.
A transaction that fails after step 4 rolls back and leaves the slot free.
"""

from __future__ import annotations

import csv
import getpass
from collections import defaultdict
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core import access
from core.audit import attached_reason, audited_save
from core.errors import AccessDenied, DomainError
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from . import listgen
from .arms import Arm
from .models import Allocation, RandomizationList, Slot, Stratum, factor_labels

FACTOR_FIELDS = ("macrovascular_or_extrahepatic", "ecog", "prior_locoregional_therapy")
FACTOR_NAMES = {
    "macrovascular_or_extrahepatic": "Macrovascular invasion and/or extrahepatic spread",
    "ecog": "ECOG performance status",
    "prior_locoregional_therapy": "Prior locoregional therapy",
}


class RandomizationError(DomainError):
    """A subject cannot be randomized, or a list cannot be made; the message says why."""


class NoActiveList(RandomizationError):
    pass


class ActiveListExists(RandomizationError):
    pass


class AlreadyRandomized(RandomizationError):
    pass


class NotEligibleForRandomization(RandomizationError):
    pass


class StratumExhausted(RandomizationError):
    pass


def low_slots_threshold() -> int:
    """Settings: RANDOMIZATION_LOW_SLOTS_WARNING (default 20 free slots left in a stratum)."""
    return settings.RANDOMIZATION_LOW_SLOTS_WARNING


# --- The list ------------------------------------------------------------------------------------


def active_list() -> RandomizationList | None:
    return RandomizationList.objects.filter(active=True).first()


def _describe(rlist: RandomizationList) -> str:
    return (
        f"randomization list #{rlist.pk} (generated {rlist.generated_at:%Y-%m-%d %H:%M} UTC "
        f"by {rlist.generated_by_name})"
    )


def generate_randomization_list(
    *,
    seed,
    slots_per_stratum=listgen.DEFAULT_SLOTS_PER_STRATUM,
    block_sizes=listgen.DEFAULT_BLOCK_SIZES,
    user=None,
) -> RandomizationList:
    """Generate and store the active list: seeded permuted blocks in each of the 8 strata.

    ``user`` (a statistician or superuser) is recorded as its author; without one (an operator
    at the server's shell) the operating-system account is recorded. A second active list is
    refused. Strata and slots are inserted with the audited bulk path.
    """
    seed = listgen.parse_seed(seed)
    slots_per_stratum = listgen.parse_slots_per_stratum(slots_per_stratum)
    sizes = listgen.parse_block_sizes(block_sizes)
    listgen.check_parameters(slots_per_stratum, sizes)
    access.require_statistician(user, "generates the list")
    slot_defs = listgen.generate(seed, slots_per_stratum, sizes)
    reason = "Randomization list generated"
    with transaction.atomic():
        current = RandomizationList.objects.select_for_update().filter(active=True).first()
        if current is not None:
            raise ActiveListExists(
                f"An active list already exists, {_describe(current)}: a second active list "
                "is refused."
            )
        rlist = RandomizationList(
            seed=seed,
            slots_per_stratum=slots_per_stratum,
            block_sizes=",".join(map(str, sizes)),
            algorithm=listgen.ALGORITHM,
            checksum=listgen.checksum(slot_defs),
            generated_by=user,
            generated_by_name=user.get_username() if user else f"{_os_user()} (shell)",
        )
        try:
            with transaction.atomic():
                audited_save(rlist, user=user, reason=reason)
        except IntegrityError as exc:  # another list was made at the same moment
            raise ActiveListExists(
                "Another active randomization list was generated at the same moment: "
                "a second active list is refused."
            ) from exc
        strata = Stratum.objects.bulk_create_with_history(
            [
                Stratum(
                    rlist=rlist,
                    number=s.number,
                    macrovascular_or_extrahepatic=s.macrovascular_or_extrahepatic,
                    ecog=s.ecog,
                    prior_locoregional_therapy=s.prior_locoregional_therapy,
                    slot_count=slots_per_stratum,
                )
                for s in listgen.STRATA
            ],
            user=user,
            reason=reason,
        )
        stratum_ids = {s.number: s.pk for s in strata}
        Slot.objects.bulk_create_with_history(
            [
                Slot(
                    rlist=rlist,
                    stratum_id=stratum_ids[d.stratum],
                    sequence=d.sequence,
                    randomization_number=d.randomization_number,
                    block_number=d.block_number,
                    block_size=d.block_size,
                    arm=d.arm,
                )
                for d in slot_defs
            ],
            user=user,
            reason=reason,
        )
    return rlist


def retire_randomization_list(rlist: RandomizationList, *, user=None, reason: str):
    """Make an unused list inactive (e.g. generated with the wrong parameters), with a reason.

    A list from which anyone was randomized is never retired: its allocations stand and their
    numbers must stay unique.
    """
    access.require_statistician(user, "retires a list")
    with transaction.atomic():
        rlist = RandomizationList.objects.select_for_update().get(pk=rlist.pk)
        if not rlist.active:
            raise RandomizationError(f"Randomization list #{rlist.pk} is already inactive.")
        used = Allocation.objects.filter(slot__rlist=rlist).count()
        if used:
            raise RandomizationError(
                f"Randomization list #{rlist.pk} has {used} allocation{'s' if used > 1 else ''}: "
                "a list in use is never retired."
            )
        rlist.active = False
        audited_save(rlist, user=user, reason=reason)
    return rlist


def _os_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in this environment (e.g. a container without one)
        return "unknown"


def stored_slot_defs(rlist: RandomizationList) -> list[listgen.SlotDef]:
    rows = (
        Slot.objects.filter(rlist=rlist)
        .order_by("stratum__number", "sequence")
        .values_list("stratum__number", "sequence", "block_number", "block_size", "arm")
    )
    return [listgen.SlotDef(*row) for row in rows]


@dataclass(frozen=True)
class Verification:
    ok: bool
    message: str


def verify_randomization_list(rlist: RandomizationList) -> Verification:
    """Re-generate the list from its seed and parameters and compare it with the stored one."""
    if rlist.algorithm != listgen.ALGORITHM:
        return Verification(
            False,
            f"List #{rlist.pk} was generated with algorithm {rlist.algorithm}; this code "
            f"implements {listgen.ALGORITHM}: it cannot be verified here.",
        )
    expected = listgen.generate(rlist.seed, rlist.slots_per_stratum, rlist.block_size_list)
    stored = stored_slot_defs(rlist)
    strata = {s.number: s for s in Stratum.objects.filter(rlist=rlist)}
    for definition in listgen.STRATA:
        row = strata.get(definition.number)
        if row is None:
            return Verification(False, f"Stratum S{definition.number} is missing from the list.")
        if (row.macrovascular_or_extrahepatic, row.ecog, row.prior_locoregional_therapy) != (
            definition.key
        ):
            return Verification(
                False,
                f"Stratum S{definition.number} is stored as {row.label}; the algorithm defines "
                f"it as {factor_labels(*definition.key)}.",
            )
    fields = ("stratum", "sequence", "block_number", "block_size", "arm")
    for position, (want, have) in enumerate(zip(expected, stored, strict=False), start=1):
        if want != have:
            field = next(f for f in fields if getattr(want, f) != getattr(have, f))
            return Verification(
                False,
                f"First difference at row {position}, slot {want.randomization_number}: "
                f"the stored list has {field} = {getattr(have, field)}, the seed gives "
                f"{getattr(want, field)}.",
            )
    if len(expected) != len(stored):
        return Verification(
            False,
            f"The stored list has {len(stored)} slots; the seed gives {len(expected)} "
            f"(first difference at row {min(len(expected), len(stored)) + 1}).",
        )
    if listgen.checksum(expected) != rlist.checksum:
        return Verification(
            False,
            f"The slots match the seed but the recorded checksum {rlist.checksum} does not.",
        )
    return Verification(
        True,
        f"OK: list #{rlist.pk} (seed {rlist.seed}, {len(listgen.STRATA)} strata × "
        f"{rlist.slots_per_stratum} slots, blocks {rlist.block_sizes}) matches its seed; "
        f"checksum {rlist.checksum}.",
    )


EXPORT_FIELDS = (
    "randomization_number",
    "stratum",
    "macrovascular_or_extrahepatic",
    "ecog",
    "prior_locoregional_therapy",
    "sequence",
    "block_number",
    "block_size",
    "arm",
    "arm_label",
    "subject_identifier",
    "site",
    "allocated_at_utc",
)


def export_rows(rlist: RandomizationList):
    """The list as rows for the statistician: every slot, and the subject where allocated."""
    yield EXPORT_FIELDS
    slots = (
        Slot.objects.filter(rlist=rlist)
        .select_related("stratum", "allocation__subject__site")
        .order_by("stratum__number", "sequence")
    )
    for slot in slots.iterator(chunk_size=2000):
        allocation = getattr(slot, "allocation", None)
        stratum = slot.stratum
        yield (
            slot.randomization_number,
            stratum.code,
            "present" if stratum.macrovascular_or_extrahepatic else "absent",
            stratum.ecog,
            "yes" if stratum.prior_locoregional_therapy else "no",
            slot.sequence,
            slot.block_number,
            slot.block_size,
            slot.arm,
            Arm(slot.arm).label,
            allocation.subject.subject_identifier if allocation else "",
            allocation.subject.site.code if allocation else "",
            allocation.allocated_at.isoformat() if allocation else "",
        )


def write_list_csv(rlist: RandomizationList, out) -> int:
    """Write the list as CSV to the file-like ``out``; returns the number of slots written."""
    writer = csv.writer(out)
    count = -1
    for count, row in enumerate(export_rows(rlist)):  # noqa: B007 - the count is the result
        writer.writerow(row)
    return count


# --- Allocation ----------------------------------------------------------------------------------


def _eligibility():
    from eligibility import services  # the eligibility app owns these rules

    return services


def _check_randomizable(subject: Subject, today) -> tuple:
    """Every rule about the subject: returns the stratum key (factors), or raises.

    The caller checks the list (``NoActiveList``) and takes the slot.
    """
    eligibility = _eligibility()
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
        raise NotEligibleForRandomization(
            f"{identifier} is {subject.get_status_display().lower()}: only a subject in "
            "screening can be randomized."
        )
    try:
        assessment = eligibility.check_randomizable(subject, today)
    except eligibility.NotRandomizable as exc:
        raise NotEligibleForRandomization(f"{identifier} cannot be randomized: {exc}") from exc
    try:
        factors = eligibility.stratification_factors(subject, assessment=assessment)
    except DomainError as exc:
        raise NotEligibleForRandomization(
            f"{identifier} cannot be randomized: the stratum cannot be derived: {exc}"
        ) from exc
    key = (
        bool(factors.macrovascular_or_extrahepatic),
        int(factors.ecog),
        bool(factors.prior_locoregional_therapy),
    )
    if key not in listgen.STRATUM_BY_KEY:
        raise NotEligibleForRandomization(
            f"{identifier} cannot be randomized: ECOG {factors.ecog} is not a stratum of "
            "this trial (ECOG 0 or 1)."
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


def preview_randomization(subject: Subject, user) -> Preview:
    """Check (without locking or allocating) that ``user`` can randomize ``subject`` now."""
    access.require_data_entry(user, subject)
    key = _check_randomizable(subject, timezone.localdate())
    if active_list() is None:
        raise _no_active_list()
    return Preview(f"S{listgen.STRATUM_BY_KEY[key].number}", factor_labels(*key))


def randomize(subject: Subject, user) -> Allocation:
    """Allocate ``subject`` the next free slot of its stratum; returns the allocation."""
    access.require_data_entry(user, subject)
    today = timezone.localdate()
    with transaction.atomic():
        locked = Subject.objects.select_for_update().get(pk=subject.pk)
        identifier = locked.subject_identifier
        key = _check_randomizable(locked, today)
        # Lock the stratum row of the active list (only that row: ``of=self``), then take the
        # lowest free slot of the stratum. Requests for the same stratum queue here.
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
        # A new statement after the lock is granted: under READ COMMITTED it sees the slots
        # taken by the transaction that held the lock before us (a subquery in the locking
        # statement would not).
        slot = (
            Slot.objects.filter(stratum=stratum, allocation__isnull=True)
            .order_by("sequence")
            .first()
        )
        if slot is None:
            raise StratumExhausted(
                f"Stratum {stratum.code} ({stratum.label}) has no free slot left in "
                f"randomization list #{stratum.rlist_id}: the statistician must extend the list. "
                f"{identifier} was not randomized."
            )
        allocation = Allocation(
            subject=locked,
            slot=slot,
            stratum=stratum,
            randomization_number=slot.randomization_number,
            arm=slot.arm,
            allocated_at=timezone.now(),
            allocated_by=user,
            macrovascular_or_extrahepatic=key[0],
            ecog=key[1],
            prior_locoregional_therapy=key[2],
        )
        # A new record (no reason needed). Its field values are checked; its references and
        # uniqueness need no extra queries here: the rows were just read under lock, and the
        # database's OneToOne constraints are the last word.
        allocation.clean_fields(exclude=["subject", "slot", "stratum", "allocated_by"])
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
            on_date=today,
            reason=f"Randomized: number {slot.randomization_number}, arm {slot.arm}",
        )
    # The caller's instance reflects the new status (no extra query).
    subject.status, subject.status_date, subject.updated = (
        locked.status,
        locked.status_date,
        locked.updated,
    )
    return allocation


def arm_of(subject: Subject) -> Arm | None:
    """The subject's arm, or None while not randomized."""
    arm = Allocation.objects.filter(subject_id=subject.pk).values_list("arm", flat=True).first()
    return Arm(arm) if arm else None


def allocation_of(subject: Subject) -> Allocation | None:
    return Allocation.objects.filter(subject_id=subject.pk).first()


# --- Stratification mismatches -------------------------------------------------------------------


def _yes_no(field: str, value) -> str:
    if value is None:
        return "missing"
    if field == "ecog":
        return str(value)
    if field == "macrovascular_or_extrahepatic":
        return "present" if value else "absent"
    return "yes" if value else "no"


def stratification_mismatches(queryset: QuerySet | None = None) -> list[Allocation]:
    """The allocations whose stratification values differ from the CRF now.

    Each returned allocation carries ``current_factors`` (None when the CRF data are now missing)
    and ``mismatch`` (a sentence). The allocation always stands; a later issue turns these into
    data queries.
    """
    eligibility = _eligibility()
    allocations = (queryset if queryset is not None else Allocation.objects.all()).select_related(
        "subject", "subject__site"
    )
    found = []
    for allocation in allocations:
        try:
            current = eligibility.stratification_factors(allocation.subject)
        except DomainError as exc:
            allocation.current_factors = None
            allocation.mismatch = f"The stratification data are now missing: {exc}"
            found.append(allocation)
            continue
        differences = []
        for field in FACTOR_FIELDS:
            used, now = getattr(allocation, field), getattr(current, field)
            if (int(used) if field == "ecog" else bool(used)) != (
                int(now) if field == "ecog" else bool(now)
            ):
                differences.append(
                    f"{FACTOR_NAMES[field]}: {_yes_no(field, used)} at randomization, "
                    f"{_yes_no(field, now)} now"
                )
        if differences:
            allocation.current_factors = current
            allocation.mismatch = "; ".join(differences) + "."
            found.append(allocation)
    return found


# --- Balance report ------------------------------------------------------------------------------


def _arm_counts() -> dict:
    return {"A": Count("pk", filter=Q(arm=Arm.A)), "B": Count("pk", filter=Q(arm=Arm.B))}


def balance_report(user) -> dict:
    """Counts per arm per stratum, per site and per factor level; free slots per stratum.

    Counts are over the allocations the user may see (``access.scope_to_user``); free slots and the
    low-slot warnings are study-wide and shown to users who see all sites. Raises AccessDenied
    for site users (they see their own allocations only).
    """
    if not access.can_read_exports(user):
        raise AccessDenied("The balance report is for the study team, not for site users.")
    allocations = access.scope_to_user(Allocation.objects.all(), user)
    study_wide = access.sees_all_sites(user)
    threshold = low_slots_threshold()

    by_key = defaultdict(lambda: {"A": 0, "B": 0})
    for row in allocations.values(*FACTOR_FIELDS).annotate(**_arm_counts()).order_by():
        key = (row["macrovascular_or_extrahepatic"], row["ecog"], row["prior_locoregional_therapy"])
        by_key[key]["A"] += row["A"]
        by_key[key]["B"] += row["B"]

    rlist = active_list()
    free = {}
    totals_per_stratum = {}
    if rlist is not None and study_wide:
        for stratum in Stratum.objects.filter(rlist=rlist).annotate(
            free=Count("slots", filter=Q(slots__allocation__isnull=True))
        ):
            free[stratum.number] = stratum.free
            totals_per_stratum[stratum.number] = stratum.slot_count

    strata, warnings = [], []
    for definition in listgen.STRATA:
        counts = by_key[definition.key]
        row = {
            "stratum": f"S{definition.number}",
            "label": factor_labels(*definition.key),
            "macrovascular_or_extrahepatic": definition.macrovascular_or_extrahepatic,
            "ecog": definition.ecog,
            "prior_locoregional_therapy": definition.prior_locoregional_therapy,
            "A": counts["A"],
            "B": counts["B"],
            "total": counts["A"] + counts["B"],
            "difference": counts["A"] - counts["B"],
        }
        if study_wide and rlist is not None:
            left = free.get(definition.number, 0)
            row["slots_total"] = totals_per_stratum.get(definition.number, 0)
            row["slots_left"] = left
            row["low"] = left <= threshold
            if row["low"]:
                warnings.append(
                    f"Stratum S{definition.number} ({row['label']}) has {left} free slot"
                    f"{'' if left == 1 else 's'} left (warning at {threshold} or fewer)."
                )
        strata.append(row)

    sites = [
        {
            "site": row["subject__site__code"],
            "A": row["A"],
            "B": row["B"],
            "total": row["A"] + row["B"],
        }
        for row in allocations.values("subject__site__code")
        .annotate(**_arm_counts())
        .order_by("subject__site__code")
    ]

    factors = []
    for field in FACTOR_FIELDS:
        index = FACTOR_FIELDS.index(field)
        levels = (0, 1) if field == "ecog" else (False, True)
        for level in levels:
            a = sum(c["A"] for k, c in by_key.items() if k[index] == level)
            b = sum(c["B"] for k, c in by_key.items() if k[index] == level)
            factors.append(
                {
                    "factor": field,
                    "factor_label": FACTOR_NAMES[field],
                    "level": _yes_no(field, level),
                    "A": a,
                    "B": b,
                    "total": a + b,
                }
            )

    mismatches = [
        {
            "subject_identifier": a.subject.subject_identifier,
            "site": a.subject.site.code,
            "randomization_number": a.randomization_number,
            "mismatch": a.mismatch,
        }
        for a in stratification_mismatches(allocations)
    ]
    if rlist is None:
        warnings.insert(0, "There is no active randomization list: nobody can be randomized.")
    total_a = sum(r["A"] for r in strata)
    total_b = sum(r["B"] for r in strata)
    return {
        "generated_at": timezone.now().isoformat(),
        "scope": "all sites" if study_wide else "your sites",
        "active_list": (
            {"id": rlist.pk, "generated_at": rlist.generated_at.isoformat()} if rlist else None
        ),
        "low_slots_threshold": threshold,
        "slots_shown": study_wide and rlist is not None,
        "totals": {"A": total_a, "B": total_b, "total": total_a + total_b},
        "strata": strata,
        "sites": sites,
        "factors": factors,
        "mismatches": mismatches,
        "warnings": warnings,
    }
