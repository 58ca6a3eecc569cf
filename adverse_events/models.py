"""The CTCAE v5.0 dictionary and the adverse event CRF (with causality per study drug).

Rules that concern one record live in ``clean()`` (run by ``core.audit.audited_save``); rules that
need the subject's arm or act on other records (causality rows, the subject's death) live in
``services``. Clinical dates are dates; the SAE clock uses UTC date-times.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.audit import AuditedManager, AuditedQuerySet
from randomization.arms import StudyDrug
from subjects.models import SubjectStatus

GRADES = (1, 2, 3, 4, 5)
OTHER_SPECIFY_SUFFIX = " - Other, specify"
# A serious AE must reach the sponsor within this time of the site becoming aware of it.
SAE_REPORTING_WINDOW = timedelta(hours=24)
# "Due soon": the clock has less than this left.
SAE_DUE_SOON = timedelta(hours=6)


def grades_text(grades) -> str:
    return ", ".join(str(g) for g in grades)


class CtcaeTerm(models.Model):
    """One CTCAE v5.0 term: its MedDRA code and SOC, the text of each grade that exists.

    ``grades`` lists the grades the term allows, as digits ("1345" for Acidosis). It is the rule;
    the grade texts are the descriptions (the hand-written demo starter set has none).
    """

    meddra_code = models.CharField(
        "MedDRA code",
        max_length=8,
        unique=True,
        validators=[RegexValidator(r"^\d{8}$", "A MedDRA code has 8 digits.")],
    )
    soc = models.CharField("MedDRA SOC", max_length=100, db_index=True)
    term = models.CharField("CTCAE term", max_length=120, unique=True)
    grades = models.CharField(
        "grades that exist",
        max_length=5,
        validators=[
            RegexValidator(
                r"^1?2?3?4?5?$", "List the grades as increasing digits 1 to 5, e.g. 1345."
            )
        ],
    )
    grade1 = models.TextField("grade 1", blank=True)
    grade2 = models.TextField("grade 2", blank=True)
    grade3 = models.TextField("grade 3", blank=True)
    grade4 = models.TextField("grade 4", blank=True)
    grade5 = models.TextField("grade 5", blank=True)
    definition = models.TextField(blank=True)
    is_other_specify = models.BooleanField(
        '"Other, specify" term',
        default=False,
        help_text="An AE coded to this term needs the verbatim name of the event.",
    )

    objects = AuditedManager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["soc", "term"]
        verbose_name = "CTCAE term"

    def __str__(self):
        return self.term

    @property
    def allowed_grades(self) -> tuple[int, ...]:
        return tuple(int(g) for g in self.grades)

    def grade_text(self, grade: int) -> str:
        return getattr(self, f"grade{grade}", "") if grade in GRADES else ""

    def clean(self):
        errors = {}
        if not self.grades:
            errors["grades"] = f"{self.term} has no grade: a CTCAE term has at least one."
        for grade in GRADES:
            if self.grade_text(grade) and str(grade) not in self.grades:
                errors[f"grade{grade}"] = (
                    f"Grade {grade} has a text but is not a grade of the term."
                )
        if self.is_other_specify != self.term.endswith(OTHER_SPECIFY_SUFFIX):
            errors["is_other_specify"] = (
                f'Only a term ending in "{OTHER_SPECIFY_SUFFIX.strip(" -")}" is an '
                '"Other, specify" term.'
            )
        if errors:
            raise ValidationError(errors)


class Causality(models.TextChoices):
    NOT_RELATED = "not_related", "Not related"
    UNLIKELY = "unlikely", "Unlikely"
    POSSIBLE = "possible", "Possible"
    PROBABLE = "probable", "Probable"
    DEFINITE = "definite", "Definite"


# The usual two-way reading of the five-point scale: possible or stronger counts as related.
RELATED_CAUSALITIES = {Causality.POSSIBLE, Causality.PROBABLE, Causality.DEFINITE}


class ActionTaken(models.TextChoices):
    DOSE_NOT_CHANGED = "not_changed", "Dose not changed"
    DOSE_REDUCED = "reduced", "Dose reduced"
    DRUG_INTERRUPTED = "interrupted", "Drug interrupted"
    DRUG_WITHDRAWN = "withdrawn", "Drug withdrawn"
    NOT_APPLICABLE = "not_applicable", "Not applicable"


class Outcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered/resolved"
    RECOVERING = "recovering", "Recovering/resolving"
    NOT_RECOVERED = "not_recovered", "Not recovered/not resolved"
    RECOVERED_WITH_SEQUELAE = "sequelae", "Recovered/resolved with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


# Outcomes that mean the event has ended (an end date), and those that mean it goes on.
ENDED_OUTCOMES = {Outcome.RECOVERED, Outcome.RECOVERED_WITH_SEQUELAE, Outcome.FATAL}
ONGOING_OUTCOMES = {Outcome.RECOVERING, Outcome.NOT_RECOVERED}

# The seriousness criteria (ICH E2A), as (field name, label).
SERIOUS_CRITERIA = (
    ("sc_death", "Results in death"),
    ("sc_life_threatening", "Life-threatening"),
    ("sc_hospitalization", "Requires or prolongs hospitalization"),
    ("sc_disability", "Persistent or significant disability/incapacity"),
    ("sc_congenital_anomaly", "Congenital anomaly/birth defect"),
    ("sc_other_important", "Other important medical event"),
)
SERIOUS_CRITERIA_FIELDS = tuple(name for name, _ in SERIOUS_CRITERIA)


class AdverseEventQuerySet(AuditedQuerySet):
    """Helpers for the SAE reporting clock (24 hours from site awareness to the sponsor)."""

    def with_sae_due(self):
        return self.annotate(
            sae_due=ExpressionWrapper(
                F("site_aware_at") + SAE_REPORTING_WINDOW, output_field=models.DateTimeField()
            )
        )

    def sae_unreported(self):
        """Serious events not yet reported to the sponsor."""
        return self.filter(serious=True, sae_reported_at__isnull=True)

    def sae_overdue(self, now=None):
        """Unreported serious events whose 24 hours have run out."""
        now = now or timezone.now()
        return self.sae_unreported().filter(site_aware_at__lte=now - SAE_REPORTING_WINDOW)

    def sae_due_soon(self, now=None, within=SAE_DUE_SOON):
        """Unreported serious events still in time, with less than ``within`` left."""
        now = now or timezone.now()
        return self.sae_unreported().filter(
            site_aware_at__gt=now - SAE_REPORTING_WINDOW,
            site_aware_at__lte=now - SAE_REPORTING_WINDOW + within,
        )

    def sae_reported_late(self):
        """Serious events that reached the sponsor more than 24 hours after site awareness."""
        return self.filter(serious=True, sae_reported_at__isnull=False).filter(
            sae_reported_at__gt=F("site_aware_at") + SAE_REPORTING_WINDOW
        )


class AdverseEvent(models.Model):
    """The AE CRF: one event of one subject, coded to CTCAE v5.0."""

    site_lookup = "subject__site"
    subject_lookup = "subject"

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="adverse_events"
    )
    ae_number = models.PositiveIntegerField(
        "AE number", editable=False, help_text="Numbered 1, 2, 3… per subject."
    )
    term = models.ForeignKey(
        CtcaeTerm, on_delete=models.PROTECT, related_name="adverse_events", verbose_name="term"
    )
    verbatim_term = models.CharField(
        "verbatim term",
        max_length=200,
        blank=True,
        help_text='The event as the investigator names it (required for an "Other, specify" term).',
    )
    grade = models.PositiveSmallIntegerField(choices=[(g, f"Grade {g}") for g in GRADES])
    onset_date = models.DateField("onset date")
    end_date = models.DateField("end date", null=True, blank=True)
    ongoing = models.BooleanField(default=False)

    serious = models.BooleanField(default=False)
    sc_death = models.BooleanField(SERIOUS_CRITERIA[0][1], default=False)
    sc_life_threatening = models.BooleanField(SERIOUS_CRITERIA[1][1], default=False)
    sc_hospitalization = models.BooleanField(SERIOUS_CRITERIA[2][1], default=False)
    sc_disability = models.BooleanField(SERIOUS_CRITERIA[3][1], default=False)
    sc_congenital_anomaly = models.BooleanField(SERIOUS_CRITERIA[4][1], default=False)
    sc_other_important = models.BooleanField(SERIOUS_CRITERIA[5][1], default=False)
    site_aware_at = models.DateTimeField(
        "site became aware",
        null=True,
        blank=True,
        help_text="When the site learned of the event (required when serious: starts the "
        "24-hour SAE clock).",
    )
    sae_reported_at = models.DateTimeField(
        "SAE reported to sponsor", null=True, blank=True, editable=False
    )

    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    death_date = models.DateField("date of death", null=True, blank=True)
    immune_related = models.BooleanField(
        "immune-related", default=False, help_text="An immune-related adverse event (irAE)."
    )
    treatment_given = models.BooleanField("treatment given", default=False)
    treatment_details = models.TextField(
        "treatment",
        blank=True,
        help_text="What was given for the event (required when treatment was given).",
    )

    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True, db_index=True)

    objects = AuditedManager.from_queryset(AdverseEventQuerySet)()
    history = HistoricalRecords(excluded_fields=["updated"])

    class Meta:
        ordering = ["subject__site__code", "subject__sequence", "ae_number"]
        verbose_name = "adverse event"
        constraints = [
            models.UniqueConstraint(fields=["subject", "ae_number"], name="ae_number_per_subject"),
            models.CheckConstraint(
                condition=~(Q(ongoing=True) & Q(end_date__isnull=False)),
                name="ae_ended_or_ongoing",
            ),
        ]

    def __str__(self):
        name = self.verbatim_term if self.term.is_other_specify else self.term.term
        return f"{self.subject} AE {self.ae_number}: {name} (grade {self.grade})"

    # --- SAE clock ------------------------------------------------------------------------
    @property
    def sae_due_at(self):
        if not self.serious or self.site_aware_at is None:
            return None
        return self.site_aware_at + SAE_REPORTING_WINDOW

    def sae_clock(self, now=None) -> str:
        """'' (not serious), 'reported', 'reported late', 'overdue', 'due soon' or 'pending'."""
        due = self.sae_due_at
        if due is None:
            return ""
        if self.sae_reported_at:
            return "reported late" if self.sae_reported_at > due else "reported"
        now = now or timezone.now()
        if now >= due:
            return "overdue"
        return "due soon" if due - now <= SAE_DUE_SOON else "pending"

    @property
    def serious_criteria(self) -> list[str]:
        return [label for name, label in SERIOUS_CRITERIA if getattr(self, name)]

    # --- rules on this record ---------------------------------------------------------------
    def clean(self):
        errors: dict[str, list[str]] = {}

        def refuse(field, message):
            errors.setdefault(field, []).append(message)

        today = timezone.localdate()
        term = self.term if self.term_id else None
        subject = self.subject if self.subject_id else None

        if term is not None:
            if term.is_other_specify and not self.verbatim_term.strip():
                refuse(
                    "verbatim_term",
                    f'"{term.term}" is an "Other, specify" term: give the verbatim name of '
                    "the event.",
                )
            if self.grade is not None and self.grade not in term.allowed_grades:
                refuse(
                    "grade",
                    f"{term.term} has no grade {self.grade}: its grades are "
                    f"{grades_text(term.allowed_grades)}.",
                )

        if self.onset_date:
            if self.onset_date > today:
                refuse("onset_date", "The onset date is in the future.")
            if (
                subject is not None
                and subject.consent_date
                and (self.onset_date < subject.consent_date)
            ):
                refuse(
                    "onset_date",
                    f"The onset date is before the informed consent "
                    f"({subject.consent_date:%Y-%m-%d}): events before consent are medical "
                    "history, not adverse events.",
                )
            if (
                subject is not None
                and subject.status == SubjectStatus.DIED
                and subject.status_date
                and self.onset_date > subject.status_date
            ):
                refuse(
                    "onset_date",
                    f"The onset date is after {subject}'s death ({subject.status_date:%Y-%m-%d}).",
                )

        if self.ongoing and self.end_date:
            refuse("end_date", "Give an end date or mark the event ongoing, not both.")
        elif not self.ongoing and not self.end_date:
            refuse("end_date", "Give the end date, or mark the event ongoing.")
        if self.end_date:
            if self.onset_date and self.end_date < self.onset_date:
                refuse("end_date", "The end date is before the onset date.")
            if self.end_date > today:
                refuse("end_date", "The end date is in the future.")

        criteria = [name for name in SERIOUS_CRITERIA_FIELDS if getattr(self, name)]
        if self.serious and not criteria:
            refuse("serious", "A serious event needs at least one seriousness criterion.")
        if not self.serious and criteria:
            refuse(
                "serious",
                "Seriousness criteria are given but the event is not marked serious: mark it "
                "serious or clear the criteria.",
            )
        if self.serious and self.site_aware_at is None:
            refuse(
                "site_aware_at",
                "Give the date and time the site became aware of the serious event: the "
                "24-hour reporting clock starts then.",
            )
        if self.site_aware_at is not None:
            if self.site_aware_at > timezone.now():
                refuse("site_aware_at", "The time the site became aware is in the future.")
            if self.onset_date and timezone.localdate(self.site_aware_at) < self.onset_date:
                refuse("site_aware_at", "The site cannot have become aware before the onset.")
        if self.sae_reported_at is not None:
            if not self.serious:
                refuse("sae_reported_at", "Only a serious event is reported to the sponsor.")
            elif self.site_aware_at and self.sae_reported_at < self.site_aware_at:
                refuse(
                    "sae_reported_at",
                    "The report to the sponsor cannot be before the site became aware.",
                )
            if self.sae_reported_at > timezone.now():
                refuse("sae_reported_at", "The report time is in the future.")

        fatal = self.outcome == Outcome.FATAL
        if self.grade == 5 and self.outcome and not fatal:
            refuse("outcome", "A grade 5 event is fatal: its outcome must be fatal.")
        if fatal and self.grade is not None and self.grade != 5:
            refuse("grade", "A fatal outcome means grade 5 (death related to the event).")
        if self.grade == 5 or fatal:
            if not self.death_date:
                refuse("death_date", "A fatal (grade 5) event needs the date of death.")
            if not (self.serious and self.sc_death):
                refuse(
                    "sc_death",
                    'A fatal (grade 5) event is serious with the criterion "results in death".',
                )
            if self.end_date and self.death_date and self.end_date != self.death_date:
                refuse("end_date", "A fatal event ends on the date of death.")
        else:
            if self.death_date:
                refuse("death_date", "A date of death is given only for a fatal (grade 5) event.")
            if self.sc_death:
                refuse(
                    "sc_death",
                    '"Results in death" applies only to a fatal (grade 5) event.',
                )
        if self.death_date:
            if self.onset_date and self.death_date < self.onset_date:
                refuse("death_date", "The date of death is before the onset date.")
            if self.death_date > today:
                refuse("death_date", "The date of death is in the future.")

        if self.outcome in ENDED_OUTCOMES and self.ongoing:
            refuse(
                "ongoing",
                f'An event with outcome "{Outcome(self.outcome).label}" has ended: give its end '
                "date instead of marking it ongoing.",
            )
        if self.outcome in ONGOING_OUTCOMES and self.end_date:
            refuse(
                "outcome",
                f'An event with outcome "{Outcome(self.outcome).label}" is ongoing: clear the '
                "end date, or choose the outcome of an ended event.",
            )

        if self.treatment_given and not self.treatment_details.strip():
            refuse("treatment_details", "Describe the treatment given for the event.")
        if not self.treatment_given and self.treatment_details.strip():
            refuse(
                "treatment_given",
                "A treatment is described: tick 'treatment given' or clear the description.",
            )
        if errors:
            raise ValidationError(errors)


class AeCausality(models.Model):
    """Causality and action taken for one study drug of the subject's arm."""

    site_lookup = "adverse_event__subject__site"
    subject_lookup = "adverse_event__subject"

    adverse_event = models.ForeignKey(
        AdverseEvent, on_delete=models.PROTECT, related_name="causalities"
    )
    drug = models.CharField("study drug", max_length=20, choices=StudyDrug.choices)
    causality = models.CharField(max_length=20, choices=Causality.choices)
    related = models.BooleanField(
        default=False,
        editable=False,
        help_text="Derived: possible, probable or definite counts as related.",
    )
    action_taken = models.CharField("action taken", max_length=20, choices=ActionTaken.choices)

    objects = AuditedManager()
    history = HistoricalRecords()

    class Meta:
        ordering = ["adverse_event", "drug"]
        verbose_name = "causality"
        verbose_name_plural = "causalities"
        constraints = [
            models.UniqueConstraint(
                fields=["adverse_event", "drug"], name="one_causality_per_ae_drug"
            )
        ]

    def __str__(self):
        return f"{StudyDrug(self.drug).name.title()}: {self.get_causality_display().lower()}"

    def save(self, *args, **kwargs):
        self.related = self.causality in RELATED_CAUSALITIES
        super().save(*args, **kwargs)

    def clean(self):
        self.related = self.causality in RELATED_CAUSALITIES
