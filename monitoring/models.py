"""Monitoring and data lock: source data verification (SDV), freeze and lock, casebook sign-off.

Frozen: the site can no longer change the data, queries go on; locked: nothing changes. Unfreezing
and unlocking keep the row (state "open") with the reason in its history, and any change to a
record clears its SDV and voids the casebook signature. These models declare ``subject_lookup``
so the subject's audit trail shows them, but they are not CRF data: no edit check runs on them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q

from core.crf import AuditedModel, after_own_fields

CASEBOOK_MEANING = (
    "I have reviewed the data in this casebook and confirm it is complete and accurate."
)


class LockLevel(models.TextChoices):
    OPEN = "open", "Open"
    FROZEN = "frozen", "Frozen"
    LOCKED = "locked", "Locked"


class _NotCrfData(AuditedModel):
    """What the monitoring models share: scoped by the subject's site, in its audit trail, no
    edit checks after their change, no data queries on them."""

    site_lookup = "subject__site"
    subject_lookup = "subject"
    triggers_edit_checks = False
    queryable = False

    class Meta:
        abstract = True


class _LockState(_NotCrfData):
    """A freeze/lock state: the level, who set it, when (UTC) and why. The history keeps each
    change; reopening keeps the row at "open"."""

    state = after_own_fields(
        models.CharField(max_length=10, choices=LockLevel.choices, default=LockLevel.OPEN)
    )
    changed_by = after_own_fields(
        models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    )
    changed_at = after_own_fields(models.DateTimeField(help_text="UTC."))
    reason = after_own_fields(models.TextField(blank=True))

    class Meta:
        abstract = True


class RecordState(_LockState):
    """The freeze/lock state of one CRF record."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="record_states"
    )
    record_label = models.CharField(max_length=200)

    class Meta:
        ordering = ["subject", "content_type", "object_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id"], name="one_state_per_record"
            )
        ]

    def __str__(self):
        return f"{self.record_label}: {self.get_state_display().lower()}"

    @staticmethod
    def audit_label(record) -> str:
        return f"Lock state of {record.record_label}"


class CasebookState(_LockState):
    """The freeze/lock state of a subject's whole casebook."""

    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.PROTECT, related_name="casebook_state"
    )

    class Meta:
        ordering = ["subject"]

    def __str__(self):
        return f"Casebook of {self.subject}: {self.get_state_display().lower()}"

    @staticmethod
    def audit_label(record) -> str:
        return "Casebook lock state"


class StudyLock(AuditedModel):
    """The database lock for analysis: one row (``singleton``), locked or not."""

    singleton = models.BooleanField(default=True, unique=True, editable=False)
    locked = models.BooleanField(default=False)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    changed_at = models.DateTimeField(help_text="UTC.")
    reason = models.TextField(blank=True)

    class Meta:
        verbose_name = "study lock"
        constraints = [
            models.CheckConstraint(condition=Q(singleton=True), name="one_study_lock_row")
        ]

    def __str__(self):
        return "Study locked" if self.locked else "Study open"


class SourceDataVerification(_NotCrfData):
    """A monitor's source data verification of one CRF record (one row per record)."""

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.PositiveBigIntegerField()
    record = GenericForeignKey("content_type", "object_id")
    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="+")
    record_label = models.CharField(max_length=200)
    verified = models.BooleanField(default=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(help_text="UTC.")
    cleared_at = models.DateTimeField(null=True, blank=True, help_text="UTC.")
    cleared_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["subject", "content_type", "object_id"]
        verbose_name = "source data verification"
        constraints = [
            models.UniqueConstraint(fields=["content_type", "object_id"], name="one_sdv_per_record")
        ]

    def __str__(self):
        state = "verified" if self.verified else "verification cleared"
        return f"{self.record_label}: {state}"

    @staticmethod
    def audit_label(record) -> str:
        return f"Source data verification of {record.record_label}"


class CasebookSignature(_NotCrfData):
    """The investigator's signature of a subject's casebook (21 CFR Part 11 style): who, when
    (UTC), what it means, and the SHA-256 of the casebook's data when signed. A change to the
    casebook voids it (``void`` with a reason, in its history); signatures are never deleted."""

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="casebook_signatures"
    )
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signer_name = models.CharField(max_length=300, help_text="The signer's full name when signing.")
    signed_at = models.DateTimeField(help_text="UTC.")
    meaning = models.TextField(default=CASEBOOK_MEANING)
    data_hash = models.CharField("SHA-256 of the signed data", max_length=64)
    void = models.BooleanField(default=False)
    voided_at = models.DateTimeField(null=True, blank=True)
    void_reason = models.TextField(blank=True)

    kind = "casebook"  # one meaning (CASEBOOK_MEANING): the ODM SignatureDef of this kind

    class Meta:
        ordering = ["-signed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["subject"], condition=Q(void=False), name="one_active_casebook_signature"
            )
        ]

    def __str__(self):
        state = " (void)" if self.void else ""
        when = f"{self.signed_at:%Y-%m-%d %H:%M} UTC"
        return f"Casebook of {self.subject} signed by {self.signer_name}, {when}{state}"

    @staticmethod
    def audit_label(record) -> str:
        return "Casebook signature"
