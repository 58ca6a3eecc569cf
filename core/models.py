"""Core's one model: the one-time tokens that stop a form from creating a record twice.

A create form carries a hidden ``submission`` token (a UUID issued when the form is shown,
``core.forms.OneTimeSubmissionMixin``). Saving the form claims the token by inserting it, in the
same transaction as the record it creates: a second POST with the same token (a double click, a
resubmitted page, a retry) fails the unique key and is sent to the record the first one made
(``result_url``), never making a second record. A transaction that fails leaves no token, so a
corrected form may be sent again. Tokens are not trial data (no history): those older than
``KEPT_FOR`` are purged as new ones are claimed.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

KEPT_FOR = timedelta(days=1)


class SubmissionTokenQuerySet(models.QuerySet["SubmissionToken"]):
    def claim(self, key: uuid.UUID, *, user) -> SubmissionToken | None:
        """Insert the token ``key`` for ``user``; None when it was already claimed (once its
        transaction committed: a concurrent claim waits for it on the unique key)."""
        try:
            with transaction.atomic():
                return self.create(key=key, user=user)
        except IntegrityError:
            return None

    def earlier_result(self, key: uuid.UUID, *, user) -> str:
        """Where the submission that claimed ``key`` first went ("" if not known to ``user``)."""
        found = self.filter(key=key, user=user).values_list("result_url", flat=True).first()
        return found or ""

    def purge(self, *, now=None) -> int:
        """Forget tokens older than ``KEPT_FOR``; how many."""
        now = now or timezone.now()
        deleted, _ = self.filter(created__lt=now - KEPT_FOR).delete()
        return deleted


class SubmissionToken(models.Model):
    key = models.UUIDField(unique=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", editable=False
    )
    created = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    result_url = models.CharField(
        max_length=500, blank=True, editable=False, help_text="The page of the record it made."
    )

    objects = SubmissionTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "form submission token"

    def __str__(self):
        return f"{self.key} ({self.created:%Y-%m-%d %H:%M} UTC)"

    def made(self, url: str) -> None:
        """Record the page of the record this submission made."""
        self.result_url = url[:500]
        self.save(update_fields=["result_url"])
