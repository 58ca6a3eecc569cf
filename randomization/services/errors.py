"""Refusals of the randomization services; each says why in a sentence."""

from core.errors import DomainError


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


class StratumChanged(RandomizationError):
    """The stratum derived now is not the one the user confirmed: nothing was allocated."""

    def __init__(self, message: str, *, stratum: str, label: str):
        super().__init__(message)
        self.stratum = stratum
        self.label = label


class RandomizationBusy(RandomizationError):
    """A lock of the allocation was not granted in time (``RANDOMIZATION_LOCK_TIMEOUT``): nothing
    was allocated; trying again in a moment normally succeeds."""
