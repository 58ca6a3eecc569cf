"""Tampering, for tests of what notices it: a change that leaves no history record."""

from django.db import models


def behind_the_audit(model: type[models.Model]) -> models.QuerySet:
    """A plain queryset of ``model``: ``update()`` through it reaches the table with no history
    record, as a raw SQL edit by the database owner would (every manager of an audited model
    refuses it; core.audit documents this remaining path)."""
    return models.QuerySet(model)
