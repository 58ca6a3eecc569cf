"""Randomization services: the list's lifecycle (``lists``) and allocation (``allocation``).

The public API (``randomization.services.randomize(subject, user)`` is a stable interface that
operators' scripts rely on). Reads (the active list, allocations, the balance report) are in
``randomization.selectors``.
"""

from .allocation import Preview, preview_randomization, randomize, randomize_visible
from .errors import (
    ActiveListExists,
    AlreadyRandomized,
    NoActiveList,
    NotEligibleForRandomization,
    RandomizationBusy,
    RandomizationError,
    StratumChanged,
    StratumExhausted,
)
from .lists import (
    Verification,
    export_rows,
    generate_randomization_list,
    retire_randomization_list,
    stored_slot_defs,
    verify_randomization_list,
    write_list_csv,
)

__all__ = [
    "ActiveListExists",
    "AlreadyRandomized",
    "NoActiveList",
    "NotEligibleForRandomization",
    "Preview",
    "RandomizationBusy",
    "RandomizationError",
    "StratumChanged",
    "StratumExhausted",
    "Verification",
    "export_rows",
    "generate_randomization_list",
    "preview_randomization",
    "randomize",
    "randomize_visible",
    "retire_randomization_list",
    "stored_slot_defs",
    "verify_randomization_list",
    "write_list_csv",
]
