"""Study drug exposure: the cycles with their IV doses (arm A) and sorafenib dosing periods
(arm B).

Rules that concern one record live in ``clean()`` (run by ``core.audit.audited_save``); rules that
need the subject's arm, the randomization date or the other records (overlapping periods) live in
``services``. The derived figures (cumulative dose, relative dose intensity) are in
``treatment.exposure``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from core.crf import SUBJECT_ORDER, CrfRecord
from core.validators import bounded_text, not_before_study_start, not_in_future
from randomization.arms import StudyDrug, drug_name

from .settings import treatment_settings

IV_DRUGS = (StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB)
ORAL_DRUGS = (StudyDrug.SORAFENIB,)
MG = Decimal("0.1")


class IvDrug(models.TextChoices):
    TORIPALIMAB = StudyDrug.TORIPALIMAB.value, "Toripalimab 240 mg IV"
    BEVACIZUMAB = StudyDrug.BEVACIZUMAB.value, "Bevacizumab 15 mg/kg IV"


def planned_iv_dose(drug: str, weight_kg: Decimal | None) -> Decimal | None:
    """The protocol dose of an IV drug in mg: toripalimab flat, bevacizumab per kg of the cycle's
    body weight (rounded to 0.1 mg); None when the weight is needed and unknown."""
    values = treatment_settings()
    if drug == StudyDrug.TORIPALIMAB:
        return Decimal(values["toripalimab_dose_mg"]).quantize(MG)
    if drug == StudyDrug.BEVACIZUMAB:
        if weight_kg is None:
            return None
        per_kg = Decimal(values["bevacizumab_dose_mg_per_kg"])
        return (per_kg * Decimal(weight_kg)).quantize(MG, rounding=ROUND_HALF_UP)
    raise ValueError(f"{drug!r} is not an IV study drug")


class Cycle(CrfRecord):
    """One 21-day treatment cycle of an arm A subject: its day 1 and the body weight that sets
    the bevacizumab dose."""

    url_name = "treatment:cycle"
    url_args = ("number",)

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="treatment_cycles"
    )
    number = models.PositiveSmallIntegerField("cycle number", validators=[MinValueValidator(1)])
    day1_date = models.DateField("cycle day 1", validators=[not_before_study_start, not_in_future])
    nominal_day1 = models.DateField(
        "scheduled day 1",
        editable=False,
        help_text="Derived: randomization date + 21 days × (number − 1); the window is ± 3 "
        "days (treatment.schedule).",
    )
    weight_kg = models.DecimalField(
        "body weight (kg)",
        max_digits=5,
        decimal_places=1,
        help_text="Weighed at this cycle: the bevacizumab dose is 15 mg/kg of it.",
    )

    class Meta:
        ordering = [*SUBJECT_ORDER, "number"]
        constraints = [
            models.UniqueConstraint(fields=["subject", "number"], name="one_cycle_number"),
        ]

    def __str__(self):
        return f"{self.subject} cycle {self.number}"

    @staticmethod
    def audit_label(record) -> str:
        return f"Cycle {record.number}"

    def clean(self):
        values = treatment_settings()
        low, high = values["weight_min_kg"], values["weight_max_kg"]
        if self.weight_kg is not None and not (low <= self.weight_kg <= high):
            raise ValidationError(
                {
                    "weight_kg": f"A body weight of {self.weight_kg} kg is implausible: give the "
                    f"weight in kg (between {low} and {high})."
                }
            )


class IvDose(CrfRecord):
    """One IV study drug on day 1 of a cycle: planned dose (derived), given dose and date, and
    any delay, interruption or reduction with its reason (and the AE that caused it)."""

    site_lookup = "cycle__subject__site"
    subject_lookup = "cycle__subject"
    url_parent = "cycle"

    cycle = models.ForeignKey(Cycle, on_delete=models.PROTECT, related_name="iv_doses")
    drug = models.CharField("study drug", max_length=20, choices=IvDrug.choices)
    planned_dose_mg = models.DecimalField(
        "planned dose (mg)",
        max_digits=7,
        decimal_places=1,
        editable=False,
        help_text="Derived: 240 mg for toripalimab, 15 mg/kg × the cycle's weight for bevacizumab.",
    )
    given_dose_mg = models.DecimalField(
        "given dose (mg)",
        max_digits=7,
        decimal_places=1,
        validators=[MinValueValidator(0)],
        help_text="0 when the dose was not given this cycle.",
    )
    administered_date = models.DateField(
        "administered on",
        null=True,
        blank=True,
        validators=[not_before_study_start, not_in_future],
    )
    delayed = models.BooleanField(default=False)
    interrupted = models.BooleanField("infusion interrupted", default=False)
    reduced = models.BooleanField("dose reduced", default=False)
    dose_change_reason = models.TextField(
        "reason for the change",
        blank=True,
        max_length=2000,
        validators=[bounded_text()],
        help_text="Required when the dose is delayed, interrupted, reduced, not given, or "
        "differs from the planned dose.",
    )
    adverse_event = models.ForeignKey(
        "adverse_events.AdverseEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="iv_dose_changes",
        verbose_name="adverse event that caused it",
    )

    class Meta:
        ordering = ["cycle", "drug"]
        verbose_name = "IV dose"
        constraints = [
            models.UniqueConstraint(fields=["cycle", "drug"], name="one_iv_dose_per_cycle_drug"),
        ]

    def __str__(self):
        return f"{self.cycle}: {drug_name(self.drug)} {self.given_dose_mg} mg"

    @staticmethod
    def audit_label(record) -> str:
        # The drug only: naming the cycle would cost a query per history row.
        return f"{drug_name(record.drug)} IV dose"

    @property
    def deviates(self) -> bool:
        """The given dose is farther from the planned one than the tolerance allows."""
        return dose_deviates(self.planned_dose_mg, self.given_dose_mg)

    def clean(self):
        errors: dict[str, list[str]] = {}
        for field, message in (*self._dose_errors(), *self._reason_errors()):
            errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(errors)

    def _dose_errors(self):
        given, planned = self.given_dose_mg, self.planned_dose_mg
        multiple = Decimal(treatment_settings()["max_dose_multiple"])
        if given is not None and planned and given > planned * multiple:
            yield (
                "given_dose_mg",
                f"{given} mg is more than {multiple.normalize():f} × the planned {planned} mg: "
                "check the dose and its unit (mg).",
            )
        if given is not None and given > 0 and self.administered_date is None:
            yield "administered_date", "Give the date the dose was administered."
        if given == 0 and self.administered_date is not None:
            yield "administered_date", "A dose not given has no administration date."
        day1 = self.cycle.day1_date if self.cycle_id else None
        if self.administered_date and day1 and self.administered_date < day1:
            yield "administered_date", "The dose is dated before the cycle's day 1."

    def _reason_errors(self):
        given, planned = self.given_dose_mg, self.planned_dose_mg
        flags = [
            name
            for name, on in (
                ("delayed", self.delayed),
                ("interrupted", self.interrupted),
                ("reduced", self.reduced),
                ("not given", given == 0),
            )
            if on
        ]
        if given and planned and self.deviates:
            flags.append(f"{given} mg given for {planned} mg planned")
        if flags and not self.dose_change_reason.strip():
            yield "dose_change_reason", f"Give the reason: the dose is {', '.join(flags)}."


def dose_deviates(planned: Decimal | None, given: Decimal | None) -> bool:
    if planned is None or given is None or not planned:
        return False
    tolerance = Decimal(treatment_settings()["dose_tolerance_percent"]) / 100
    return abs(given - planned) > planned * tolerance


class DoseLevel(models.TextChoices):
    FULL = "800", "800 mg/day (400 mg twice daily)"
    REDUCED_400 = "400", "400 mg/day (400 mg once daily)"
    REDUCED_400_QOD = "400qod", "400 mg every other day"
    HELD = "held", "Held (no dose)"


# Average mg per day of each level (400 mg every other day: 200 mg/day on average).
DAILY_DOSE_MG = {
    DoseLevel.FULL: Decimal("800"),
    DoseLevel.REDUCED_400: Decimal("400"),
    DoseLevel.REDUCED_400_QOD: Decimal("200"),
    DoseLevel.HELD: Decimal("0"),
}


class OralDosingPeriod(CrfRecord):
    """A period of sorafenib at one dose level (arm B): start, stop (blank while ongoing), and
    for any level below 800 mg/day or held, its reason and the AE that caused it."""

    url_name = "treatment:oral_period"
    url_args = ("pk",)

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="oral_dosing_periods"
    )
    drug = models.CharField(
        "study drug",
        max_length=20,
        choices=[(d.value, d.label) for d in ORAL_DRUGS],
        default=StudyDrug.SORAFENIB,
    )
    dose_level = models.CharField("dose level", max_length=10, choices=DoseLevel.choices)
    start_date = models.DateField("start date", validators=[not_before_study_start, not_in_future])
    stop_date = models.DateField(
        "stop date",
        null=True,
        blank=True,
        validators=[not_before_study_start, not_in_future],
        help_text="Blank while the period goes on.",
    )
    dose_change_reason = models.TextField(
        "reason for the change",
        blank=True,
        max_length=2000,
        validators=[bounded_text()],
        help_text="Required for a level below 800 mg/day or held.",
    )
    adverse_event = models.ForeignKey(
        "adverse_events.AdverseEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="oral_dose_changes",
        verbose_name="adverse event that caused it",
    )

    class Meta:
        ordering = [*SUBJECT_ORDER, "start_date"]
        verbose_name = "oral dosing period"
        constraints = [
            models.CheckConstraint(
                condition=Q(stop_date__isnull=True) | Q(stop_date__gte=models.F("start_date")),
                name="oral_period_stops_after_start",
            ),
        ]

    def __str__(self):
        stop = f"{self.stop_date:%Y-%m-%d}" if self.stop_date else "ongoing"
        return (
            f"{self.subject}: {drug_name(self.drug)} {self.get_dose_level_display()} "
            f"{self.start_date:%Y-%m-%d} to {stop}"
        )

    @staticmethod
    def audit_label(record) -> str:
        return f"Sorafenib from {record.start_date:%Y-%m-%d}"

    @property
    def daily_dose_mg(self) -> Decimal:
        return DAILY_DOSE_MG[DoseLevel(self.dose_level)]

    def clean(self):
        errors = {}
        if self.start_date and self.stop_date and self.stop_date < self.start_date:
            errors["stop_date"] = "The stop date is before the start date."
        if (
            self.dose_level
            and self.dose_level != DoseLevel.FULL
            and not self.dose_change_reason.strip()
        ):
            errors["dose_change_reason"] = (
                f"Give the reason for {DoseLevel(self.dose_level).label.lower()}: every level "
                "below 800 mg/day, and a hold, needs one."
            )
        if errors:
            raise ValidationError(errors)
