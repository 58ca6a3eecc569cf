"""The randomization list (strata and their slots) and the allocations made from it.

A ``Stratum`` row is what an allocation locks before it takes the lowest free slot; a ``Slot``
is free while no ``Allocation`` points at it and never changes after generation, so the list's
audit trail is its creation only. One allocation per subject and per slot (OneToOne). Slots,
block sizes and lists are for statisticians only.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.crf import AuditedModel, CrfRecord

from .arms import Arm


def factor_labels(macrovascular_or_extrahepatic: bool, ecog: int, prior_lrt: bool) -> str:
    """The stratum in words, e.g. 'MVI/EHS present · ECOG 1 · prior LRT: no'."""
    return (
        f"MVI/EHS {'present' if macrovascular_or_extrahepatic else 'absent'} · "
        f"ECOG {ecog} · prior LRT: {'yes' if prior_lrt else 'no'}"
    )


class RandomizationList(AuditedModel):
    seed = models.PositiveBigIntegerField(help_text="The seed the list was generated from.")
    slots_per_stratum = models.PositiveIntegerField()
    block_sizes = models.CharField(
        max_length=50, help_text="Comma-separated block sizes, e.g. 4,6 (concealed)."
    )
    algorithm = models.CharField(
        max_length=40, help_text="Version of the generation algorithm (randomization.listgen)."
    )
    checksum = models.CharField(
        max_length=64, help_text="SHA-256 of the list's slots in canonical CSV form."
    )
    active = models.BooleanField(default=True)
    generated_at = models.DateTimeField(default=timezone.now)
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    generated_by_name = models.CharField(
        max_length=150,
        help_text="Who generated the list: the user, or the operating-system account.",
    )

    class Meta:
        ordering = ["-generated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["active"],
                condition=models.Q(active=True),
                name="one_active_randomization_list",
            )
        ]

    def __str__(self):
        state = "active" if self.active else "inactive"
        return f"Randomization list #{self.pk} (seed {self.seed}, {state})"

    @property
    def block_size_list(self) -> list[int]:
        return [int(s) for s in self.block_sizes.split(",")]


class Stratum(AuditedModel):
    rlist = models.ForeignKey(
        RandomizationList,
        on_delete=models.PROTECT,
        related_name="strata",
        verbose_name="randomization list",
    )
    number = models.PositiveSmallIntegerField(help_text="1..8, see randomization.listgen.STRATA.")
    macrovascular_or_extrahepatic = models.BooleanField(
        "macrovascular invasion and/or extrahepatic spread"
    )
    ecog = models.PositiveSmallIntegerField("ECOG performance status")
    prior_locoregional_therapy = models.BooleanField("prior locoregional therapy")
    slot_count = models.PositiveIntegerField()

    class Meta:
        ordering = ["rlist", "number"]
        verbose_name_plural = "strata"
        constraints = [
            models.UniqueConstraint(fields=["rlist", "number"], name="stratum_number_per_list"),
            models.UniqueConstraint(
                fields=[
                    "rlist",
                    "macrovascular_or_extrahepatic",
                    "ecog",
                    "prior_locoregional_therapy",
                ],
                name="stratum_factors_per_list",
            ),
        ]

    def __str__(self):
        return f"{self.code} ({self.label})"

    @property
    def code(self) -> str:
        return f"S{self.number}"

    @property
    def label(self) -> str:
        return factor_labels(
            self.macrovascular_or_extrahepatic, self.ecog, self.prior_locoregional_therapy
        )


class Slot(AuditedModel):
    rlist = models.ForeignKey(
        RandomizationList,
        on_delete=models.PROTECT,
        related_name="slots",
        verbose_name="randomization list",
    )
    stratum = models.ForeignKey(Stratum, on_delete=models.PROTECT, related_name="slots")
    sequence = models.PositiveIntegerField(help_text="Position in the stratum, from 1.")
    randomization_number = models.CharField(max_length=20)
    block_number = models.PositiveIntegerField(help_text="Block within the stratum, from 1.")
    block_size = models.PositiveSmallIntegerField()
    arm = models.CharField(max_length=1, choices=Arm.choices)

    class Meta:
        ordering = ["stratum__number", "sequence"]
        constraints = [
            models.UniqueConstraint(
                fields=["stratum", "sequence"], name="slot_sequence_per_stratum"
            ),
            models.UniqueConstraint(
                fields=["rlist", "randomization_number"], name="slot_number_per_list"
            ),
        ]

    def __str__(self):
        return self.randomization_number


class Allocation(CrfRecord):
    """Shown on the subject's page; its time is ``allocated_at`` (no timestamps of its own)."""

    url_parent = "subject"
    created = None
    updated = None

    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.PROTECT, related_name="allocation"
    )
    slot = models.OneToOneField(Slot, on_delete=models.PROTECT, related_name="allocation")
    stratum = models.ForeignKey(Stratum, on_delete=models.PROTECT, related_name="allocations")
    randomization_number = models.CharField(max_length=20)
    arm = models.CharField(max_length=1, choices=Arm.choices)
    allocated_at = models.DateTimeField(default=timezone.now, help_text="UTC.")
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # The stratification values used, as the CRF gave them at randomization.
    macrovascular_or_extrahepatic = models.BooleanField(
        "macrovascular invasion and/or extrahepatic spread (used)"
    )
    ecog = models.PositiveSmallIntegerField("ECOG performance status (used)")
    prior_locoregional_therapy = models.BooleanField("prior locoregional therapy (used)")

    # A randomization stands (core.audit: refused in code and by PostgreSQL triggers).
    never_deleted = True
    immutable_fields = (
        "subject",
        "slot",
        "stratum",
        "randomization_number",
        "arm",
        "allocated_at",
        "allocated_by",
        "macrovascular_or_extrahepatic",
        "ecog",
        "prior_locoregional_therapy",
    )

    class Meta:
        ordering = ["allocated_at", "pk"]

    def __str__(self):
        return f"{self.randomization_number}: {self.subject} → arm {self.arm}"

    @property
    def arm_label(self) -> str:
        return Arm(self.arm).label

    @property
    def stratum_label(self) -> str:
        return factor_labels(
            self.macrovascular_or_extrahepatic, self.ecog, self.prior_locoregional_therapy
        )
