"""RECIST v1.1 tumor assessment CRFs: baseline lesions, follow-up assessments, measurements.

The derived response is stored by the services at every save (and recomputed for later
assessments, since the nadir runs through them); it is never entered. Rules of one record live in
``clean()`` (run by ``audited_save``); rules across records (lesion counts, organs) in
``services``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.crf import CrfRecord
from core.validators import bounded_text, not_before_study_start, not_in_future

from .recist import NonTargetStatus, Response

MIN_TARGET_DIAMETER = Decimal(10)  # mm, longest diameter of a non-nodal target
MIN_TARGET_NODE = Decimal(15)  # mm, short axis of a nodal target
MAX_TARGETS = 5
MAX_TARGETS_PER_ORGAN = 2
MAX_DIAMETER = Decimal(500)  # mm: anything larger is a typo (cm entered as mm x 10, ...)


class Organ(models.TextChoices):
    LIVER = "liver", "Liver"
    LUNG = "lung", "Lung"
    LYMPH_NODE = "lymph_node", "Lymph node"
    PERITONEUM = "peritoneum", "Peritoneum"
    ADRENAL = "adrenal", "Adrenal gland"
    BONE = "bone", "Bone"
    PORTAL_VEIN = "portal_vein", "Portal vein (tumor thrombus)"
    SOFT_TISSUE = "soft_tissue", "Soft tissue"
    OTHER = "other", "Other"


class ImagingMethod(models.TextChoices):
    CT = "CT", "CT"
    MRI = "MRI", "MRI"


RESPONSE_CHOICES = [(r.value, r.label) for r in Response]
NON_TARGET_STATUS_CHOICES = [
    (NonTargetStatus.ABSENT.value, "Absent (nodes < 10 mm)"),
    (NonTargetStatus.PRESENT.value, "Present, not progressed"),
    (NonTargetStatus.PROGRESSION.value, "Unequivocal progression"),
    (NonTargetStatus.NOT_EVALUATED.value, "Not evaluated"),
]

diameter_validators = [MinValueValidator(Decimal(0)), MaxValueValidator(MAX_DIAMETER)]


def recist_figure(label: str, *, max_digits: int) -> models.DecimalField:
    """A figure of the RECIST derivation (mm, or % change): stored, never entered; empty until
    there is something to compute it from."""
    return models.DecimalField(
        label, max_digits=max_digits, decimal_places=1, null=True, blank=True, editable=False
    )


def recist_response(label: str) -> models.CharField:
    """A response the RECIST derivation gives: stored, never entered."""
    return models.CharField(
        label, max_length=14, choices=RESPONSE_CHOICES, blank=True, editable=False
    )


class BaselineLesion(CrfRecord):
    url_args = ("number",)
    code_prefix: ClassVar[str] = ""

    subject = models.ForeignKey("subjects.Subject", on_delete=models.PROTECT, related_name="+")
    number = models.PositiveSmallIntegerField(editable=False)
    organ = models.CharField(max_length=20, choices=Organ.choices)
    location = models.CharField(
        max_length=200,
        validators=[bounded_text(200)],
        help_text="Where exactly (e.g. segment VIII, right lower lobe, porta hepatis node).",
    )
    baseline_date = models.DateField(
        "baseline scan date", validators=[not_before_study_start, not_in_future]
    )
    method = models.CharField(max_length=3, choices=ImagingMethod.choices)

    class Meta:
        abstract = True
        ordering = ["subject_id", "number"]

    def __str__(self):
        return f"{self.code} {self.get_organ_display()}, {self.location}"

    @property
    def code(self) -> str:
        """T1..T5 for a target lesion, NT1... for a non-target one."""
        return f"{self.code_prefix}{self.number}"

    @property
    def lymph_node(self) -> bool:
        return self.organ == Organ.LYMPH_NODE


class TargetLesion(BaselineLesion):
    """A measurable lesion chosen at baseline; T1..T5 per subject."""

    url_name = "efficacy:target_edit"
    code_prefix = "T"

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="target_lesions"
    )
    diameter = models.DecimalField(
        "baseline diameter (mm)",
        max_digits=4,
        decimal_places=1,
        validators=diameter_validators,
        help_text="Longest diameter; for a lymph node the short axis.",
    )

    class Meta(BaselineLesion.Meta):
        verbose_name = "target lesion"
        constraints = [
            models.UniqueConstraint(fields=["subject", "number"], name="target_lesion_number"),
        ]

    def clean(self):
        if self.diameter is None or self.organ == "":
            return
        if self.lymph_node and self.diameter < MIN_TARGET_NODE:
            raise ValidationError(
                {
                    "diameter": f"A lymph node of {self.diameter} mm short axis is not measurable: "
                    f"a target node needs >= {MIN_TARGET_NODE} mm short axis (record it as a "
                    "non-target lesion; a node under 10 mm is normal)."
                }
            )
        if not self.lymph_node and self.diameter < MIN_TARGET_DIAMETER:
            raise ValidationError(
                {
                    "diameter": f"A lesion of {self.diameter} mm is not measurable: a target "
                    f"lesion needs >= {MIN_TARGET_DIAMETER} mm longest diameter (record it as a "
                    "non-target lesion)."
                }
            )


class NonTargetLesion(BaselineLesion):
    """Any other lesion present at baseline, followed as absent / present / progressed; NT1..."""

    url_name = "efficacy:non_target_edit"
    code_prefix = "NT"

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="non_target_lesions"
    )

    class Meta(BaselineLesion.Meta):
        verbose_name = "non-target lesion"
        constraints = [
            models.UniqueConstraint(fields=["subject", "number"], name="non_target_lesion_number"),
        ]


class TumorAssessment(CrfRecord):
    """One follow-up tumor assessment, its investigator's and its derived overall response."""

    url_name = "efficacy:assessment"
    url_args = ("number",)

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="tumor_assessments"
    )
    number = models.PositiveSmallIntegerField(
        "assessment number", editable=False, help_text="Numbered 1, 2, 3... per subject."
    )
    assessment_date = models.DateField(
        "assessment date", validators=[not_before_study_start, not_in_future]
    )
    method = models.CharField(max_length=3, choices=ImagingMethod.choices)
    new_lesions = models.BooleanField(
        "new lesions", default=False, help_text="An unequivocal new lesion was seen."
    )
    new_lesions_description = models.TextField(
        "new lesions: where and what",
        blank=True,
        max_length=2000,
        validators=[bounded_text()],
    )
    investigator_response = models.CharField(
        "overall response (investigator)", max_length=14, choices=RESPONSE_CHOICES
    )

    # Derived by efficacy.recist at every save (services.rederive): never entered.
    target_sum = recist_figure("sum of diameters (mm)", max_digits=5)
    nadir = recist_figure("nadir before this assessment (mm)", max_digits=5)
    change_from_baseline = recist_figure("change from baseline (%)", max_digits=6)
    change_from_nadir = recist_figure("change from nadir (%)", max_digits=7)
    target_response = recist_response("target response (derived)")
    non_target_response = recist_response("non-target response (derived)")
    derived_response = recist_response("overall response (RECIST 1.1, derived)")

    class Meta:
        ordering = ["subject_id", "assessment_date", "number"]
        verbose_name = "tumor assessment"
        constraints = [
            models.UniqueConstraint(fields=["subject", "number"], name="tumor_assessment_number"),
        ]

    def __str__(self):
        return f"{self.subject} tumor assessment {self.number} ({self.assessment_date})"

    @property
    def responses_differ(self) -> bool:
        return bool(self.derived_response) and self.derived_response != self.investigator_response

    def clean(self):
        errors = {}
        if self.new_lesions and not self.new_lesions_description.strip():
            errors["new_lesions_description"] = "Say where the new lesions are and what they are."
        if not self.new_lesions and self.new_lesions_description.strip():
            errors["new_lesions"] = (
                "A description of new lesions is given: tick new lesions, or clear the description."
            )
        if errors:
            raise ValidationError(errors)


class TargetMeasurement(CrfRecord):
    """One target lesion at one assessment: its diameter, or not evaluated (empty)."""

    site_lookup = "assessment__subject__site"
    subject_lookup = "assessment__subject"
    url_parent = "assessment"

    assessment = models.ForeignKey(
        TumorAssessment, on_delete=models.CASCADE, related_name="measurements"
    )
    lesion = models.ForeignKey(TargetLesion, on_delete=models.PROTECT, related_name="measurements")
    diameter = models.DecimalField(
        "diameter (mm)",
        max_digits=4,
        decimal_places=1,
        null=True,
        blank=True,
        validators=diameter_validators,
        help_text="0 if the lesion disappeared; empty if not evaluated.",
    )
    created = None
    updated = None

    class Meta:
        ordering = ["assessment_id", "lesion__number"]
        verbose_name = "target lesion measurement"
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "lesion"], name="one_measurement_per_target"
            ),
        ]

    def __str__(self):
        value = "not evaluated" if self.diameter is None else f"{self.diameter} mm"
        return f"{self.lesion.code}: {value}"


class NonTargetAssessment(CrfRecord):
    """One non-target lesion at one assessment."""

    site_lookup = "assessment__subject__site"
    subject_lookup = "assessment__subject"
    url_parent = "assessment"

    assessment = models.ForeignKey(
        TumorAssessment, on_delete=models.CASCADE, related_name="non_target_statuses"
    )
    lesion = models.ForeignKey(NonTargetLesion, on_delete=models.PROTECT, related_name="statuses")
    status = models.CharField(max_length=14, choices=NON_TARGET_STATUS_CHOICES)
    created = None
    updated = None

    class Meta:
        ordering = ["assessment_id", "lesion__number"]
        verbose_name = "non-target lesion status"
        constraints = [
            models.UniqueConstraint(
                fields=["assessment", "lesion"], name="one_status_per_non_target"
            ),
        ]

    def __str__(self):
        return f"{self.lesion.code}: {self.get_status_display()}"
