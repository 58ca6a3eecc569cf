"""Generation of the randomization list: seeded permuted blocks within each stratum (pure Python).

The algorithm (``ALGORITHM``) is fixed so that the same seed always gives the same list, which
``verify_randomization_list`` relies on: change it only under a new algorithm name. Its steps
are in README ("Randomization"). The checksum is the SHA-256 of ``canonical_text``.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from itertools import product

from core.errors import DomainError

from .arms import Arm

ALGORITHM = "permuted-blocks/v1"
DEFAULT_BLOCK_SIZES = (4, 6)
DEFAULT_SLOTS_PER_STRATUM = 300
MAX_SLOTS_PER_STRATUM = 10_000
MAX_BLOCK_SIZE = 20
MAX_SEED = 2**63 - 1


class InvalidListParameters(DomainError):
    """A parameter of list generation is not acceptable; the message says which and why."""


@dataclass(frozen=True)
class StratumDef:
    number: int
    macrovascular_or_extrahepatic: bool
    ecog: int
    prior_locoregional_therapy: bool

    @property
    def key(self) -> tuple[bool, int, bool]:
        return (self.macrovascular_or_extrahepatic, self.ecog, self.prior_locoregional_therapy)


STRATA: tuple[StratumDef, ...] = tuple(
    StratumDef(i + 1, mvi, ecog, lrt)
    for i, (mvi, ecog, lrt) in enumerate(product((False, True), (0, 1), (False, True)))
)
STRATUM_BY_KEY = {s.key: s for s in STRATA}


@dataclass(frozen=True)
class SlotDef:
    stratum: int
    sequence: int
    block_number: int
    block_size: int
    arm: str

    @property
    def randomization_number(self) -> str:
        return randomization_number(self.stratum, self.sequence)


def randomization_number(stratum: int, sequence: int) -> str:
    return f"R{stratum}-{sequence:04d}"


# --- Parameters ----------------------------------------------------------------------------------


def _whole_number(text, what: str) -> int:
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    value = str(text).strip()
    if not value.isdigit():
        raise InvalidListParameters(f"{what} must be a whole number, not '{text}'.")
    return int(value)


def parse_seed(text) -> int:
    seed = _whole_number(text, "The seed")
    if seed > MAX_SEED:
        raise InvalidListParameters(f"The seed must be at most {MAX_SEED}.")
    return seed


def parse_slots_per_stratum(text) -> int:
    slots = _whole_number(text, "The number of slots per stratum")
    if slots < 1:
        raise InvalidListParameters("The number of slots per stratum must be at least 1.")
    if slots > MAX_SLOTS_PER_STRATUM:
        raise InvalidListParameters(
            f"The number of slots per stratum must be at most {MAX_SLOTS_PER_STRATUM}."
        )
    return slots


def parse_block_sizes(text) -> tuple[int, ...]:
    """'4,6' → (4, 6); every size even (1:1), between 2 and MAX_BLOCK_SIZE, no repeats."""
    parts = text if isinstance(text, list | tuple) else str(text).split(",")
    parts = [str(p).strip() for p in parts]
    if not parts or any(p == "" for p in parts):
        raise InvalidListParameters(
            f"Give block sizes as whole numbers separated by commas, e.g. 4,6 (not '{text}')."
        )
    sizes = []
    for part in parts:
        if not part.isdigit():
            raise InvalidListParameters(f"Block size '{part}' is not a whole number.")
        size = int(part)
        if size % 2 or size < 2:
            raise InvalidListParameters(
                f"Block size {size} cannot hold arms A and B 1:1: block sizes must be even "
                "and at least 2."
            )
        if size > MAX_BLOCK_SIZE:
            raise InvalidListParameters(
                f"Block size {size} is above the maximum of {MAX_BLOCK_SIZE}."
            )
        sizes.append(size)
    if len(set(sizes)) != len(sizes):
        raise InvalidListParameters(f"Block sizes are repeated in '{text}'.")
    return tuple(sorted(sizes))


def fillable_totals(total: int, sizes: tuple[int, ...]) -> set[int]:
    """The totals 0..``total`` that a sequence of blocks of ``sizes`` fills exactly."""
    reachable = {0}
    for n in range(1, total + 1):
        if any(n - s in reachable for s in sizes if s <= n):
            reachable.add(n)
    return reachable


def check_parameters(slots_per_stratum: int, sizes: tuple[int, ...]) -> None:
    if slots_per_stratum not in fillable_totals(slots_per_stratum, sizes):
        raise InvalidListParameters(
            f"{slots_per_stratum} slots per stratum cannot be filled with complete blocks of "
            f"{', '.join(map(str, sizes))}: choose a total that is a sum of block sizes "
            f"(e.g. {sum(sizes) * max(1, slots_per_stratum // sum(sizes))})."
        )


# --- Generation ----------------------------------------------------------------------------------


def stratum_generators(seed: int) -> dict[int, random.Random]:
    master = random.Random(seed)
    return {s.number: random.Random(master.getrandbits(64)) for s in STRATA}


def stratum_slots(
    rng: random.Random, stratum: int, slots_per_stratum: int, sizes: tuple[int, ...]
) -> list[SlotDef]:
    fillable = fillable_totals(slots_per_stratum, sizes)
    slots: list[SlotDef] = []
    remaining = slots_per_stratum
    block_number = 0
    while remaining:
        choices = [s for s in sizes if s <= remaining and remaining - s in fillable]
        size = rng.choice(choices)
        arms = [Arm.A.value] * (size // 2) + [Arm.B.value] * (size // 2)
        rng.shuffle(arms)
        block_number += 1
        for arm in arms:
            slots.append(SlotDef(stratum, len(slots) + 1, block_number, size, arm))
        remaining -= size
    return slots


def generate(seed: int, slots_per_stratum: int, block_sizes: tuple[int, ...]) -> list[SlotDef]:
    """Every slot of the list, stratum by stratum, in sequence order."""
    sizes = tuple(sorted(block_sizes))
    check_parameters(slots_per_stratum, sizes)
    generators = stratum_generators(seed)
    slots: list[SlotDef] = []
    for stratum in STRATA:
        slots.extend(
            stratum_slots(generators[stratum.number], stratum.number, slots_per_stratum, sizes)
        )
    return slots


CSV_FIELDS = ("randomization_number", "stratum", "sequence", "block_number", "block_size", "arm")


def canonical_text(slots) -> str:
    """The slots as canonical CSV (what the checksum is taken over)."""
    lines = [",".join(CSV_FIELDS)]
    for s in slots:
        lines.append(
            f"{randomization_number(s.stratum, s.sequence)},{s.stratum},{s.sequence},"
            f"{s.block_number},{s.block_size},{s.arm}"
        )
    return "\n".join(lines) + "\n"


def checksum(slots) -> str:
    return hashlib.sha256(canonical_text(slots).encode()).hexdigest()
