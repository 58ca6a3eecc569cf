"""Domain errors: a refusal by a business rule, with a sentence a user can act on.

Views turn them into form errors, the API into 400 responses, commands into a non-zero exit.
"""

from collections.abc import Iterable


class DomainError(Exception):
    """A business rule refused the operation; str(error) says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ReasonRequired(DomainError):
    def __init__(self, message: str = "A reason for change is required to change saved data."):
        super().__init__(message)


def refuse_unknown_fields(
    given: Iterable[str],
    allowed: Iterable[str],
    form: str,
    *,
    error: type[DomainError] = DomainError,
) -> None:
    """A service called with a field its form does not have refuses it by name (``error``: the
    app's own refusal): a caller's typo, or a field the service sets itself (the subject), is
    never dropped silently nor a ``TypeError``."""
    unknown = set(given) - set(allowed)
    if unknown:
        raise error(f"These are not fields of the {form}: {', '.join(sorted(unknown))}.")


class AccessDenied(DomainError):
    """The user may not act on this record (wrong site or wrong role)."""


class BulkChangeRefused(DomainError):
    """A bulk path that would bypass the audit trail was used on an audited model."""


class HistoryBypassRefused(DomainError):
    """A write that would leave no history record (or delete what is kept for good) was refused."""
