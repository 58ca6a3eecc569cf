"""The randomization list's lifecycle: generate, retire, verify against the seed, export."""

from __future__ import annotations

import csv
import getpass
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from core import access
from core.audit import audited_save

from .. import listgen
from ..arms import Arm
from ..models import Allocation, RandomizationList, Slot, Stratum, factor_labels
from .errors import ActiveListExists, RandomizationError


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
