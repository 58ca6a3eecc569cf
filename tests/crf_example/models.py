"""One CRF: a subject's vital signs at a visit (a date, a number with its unit, a choice)."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.crf import SUBJECT_ORDER, CrfRecord
from core.validators import not_before_study_start, not_in_future


class Position(models.TextChoices):
    SITTING = "sitting", "Sitting"
    SUPINE = "supine", "Supine"
    STANDING = "standing", "Standing"


class VitalSigns(CrfRecord):
    url_name = "crf_example:edit"
    url_args = ("pk",)

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="vital_signs"
    )
    measured_on = models.DateField(
        "date measured", validators=[not_before_study_start, not_in_future]
    )
    systolic_bp = models.PositiveSmallIntegerField(
        "systolic blood pressure (mmHg)",
        validators=[MinValueValidator(40), MaxValueValidator(300)],
    )
    position = models.CharField("position", max_length=10, choices=Position.choices)

    class Meta(CrfRecord.Meta):
        verbose_name = "vital signs"
        verbose_name_plural = "vital signs"
        ordering = [*SUBJECT_ORDER, "measured_on", "pk"]

    def __str__(self):
        return f"{self.subject} vital signs ({self.measured_on:%Y-%m-%d})"
