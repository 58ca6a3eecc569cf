"""The CTCAE v5.0 dictionary and the adverse event CRF (with causality per study drug).

Rules that concern one record live in ``clean()`` (run by ``core.audit.audited_save``); rules that
need the subject's arm or act on other records (causality rows, the subject's death) live in
``services``. Clinical dates are dates; the SAE clock uses UTC date-times.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import ExpressionWrapper, F, Q
from django.utils import timezone

from core.audit import AuditedManager, AuditedQuerySet
from core.crf import SUBJECT_ORDER, AuditedModel, CrfRecord
from core.validators import bounded_text, latest_today, not_before_study_start
from randomization.arms import StudyDrug, drug_name
from subjects.models import SubjectStatus

from . import sae_clock
from .sae_clock import SaeClock

GRADES = (1, 2, 3, 4, 5)
OTHER_SPECIFY_SUFFIX = " - Other, specify"


def grades_text(grades) -> str:
    return ", ".join(str(g) for g in grades)


class CtcaeTerm(AuditedModel):
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


class AeOutcome(models.TextChoices):
    RECOVERED = "recovered", "Recovered/resolved"
    RECOVERING = "recovering", "Recovering/resolving"
    NOT_RECOVERED = "not_recovered", "Not recovered/not resolved"
    RECOVERED_WITH_SEQUELAE = "sequelae", "Recovered/resolved with sequelae"
    FATAL = "fatal", "Fatal"
    UNKNOWN = "unknown", "Unknown"


# Outcomes that mean the event has ended (an end date), and those that mean it goes on.
ENDED_OUTCOMES = {AeOutcome.RECOVERED, AeOutcome.RECOVERED_WITH_SEQUELAE, AeOutcome.FATAL}
ONGOING_OUTCOMES = {AeOutcome.RECOVERING, AeOutcome.NOT_RECOVERED}

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
    """The SAE reporting clock as filters (its one definition: ``sae_clock``)."""

    def with_sae_due(self):
        return self.annotate(
            sae_due=ExpressionWrapper(
                F("site_aware_at") + sae_clock.REPORTING_WINDOW,
                output_field=models.DateTimeField(),
            )
        )

    def in_sae_clock(self, *clocks: SaeClock, now=None):
        """Events whose SAE clock is one of ``clocks`` at ``now``."""
        return self.filter(sae_clock.any_of(clocks, now or timezone.now()))

    def sae_unreported(self, now=None):
        """Serious events not yet reported to the sponsor (pending, due soon or overdue)."""
        return self.in_sae_clock(*sae_clock.UNREPORTED, now=now)


class AdverseEvent(CrfRecord):
    """The AE CRF: one event of one subject, coded to CTCAE v5.0."""

    url_name = "adverse_events:edit"
    url_args = ("ae_number",)
    # Safety reporting does not wait for data management: while the record, the casebook or
    # the study is frozen (never locked), the time a serious AE was reported to the sponsor
    # may still be recorded or corrected, with a reason, audited, its verification cleared
    # (``monitoring.guard``). Every other field is frozen, the seriousness included.
    freeze_exempt_fields = ("sae_reported_at",)

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
    onset_date = models.DateField("onset date", validators=[not_before_study_start])
    end_date = models.DateField(
        "end date", null=True, blank=True, validators=[not_before_study_start]
    )
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
        validators=[not_before_study_start],
        help_text="When the site learned of the event (required when serious: starts the "
        "24-hour SAE clock).",
    )
    sae_reported_at = models.DateTimeField(
        "SAE reported to sponsor",
        null=True,
        blank=True,
        editable=False,
        validators=[not_before_study_start],
    )

    outcome = models.CharField(max_length=20, choices=AeOutcome.choices)
    death_date = models.DateField(
        "date of death", null=True, blank=True, validators=[not_before_study_start]
    )
    immune_related = models.BooleanField(
        "immune-related", default=False, help_text="An immune-related adverse event (irAE)."
    )
    treatment_given = models.BooleanField("treatment given", default=False)
    treatment_details = models.TextField(
        "treatment",
        blank=True,
        max_length=2000,
        validators=[bounded_text()],
        help_text="What was given for the event (required when treatment was given).",
    )

    objects = AuditedManager.from_queryset(AdverseEventQuerySet)()

    class Meta:
        ordering = [*SUBJECT_ORDER, "ae_number"]
        verbose_name = "adverse event"
        # The SAE clock's pages read the serious events not yet reported: a few rows of a table
        # that grows with the study.
        indexes = [
            models.Index(
                fields=["site_aware_at"],
                condition=Q(serious=True, sae_reported_at__isnull=True),
                name="ae_sae_unreported",
            )
        ]
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

    def freeze_exemption_applies(self) -> bool:
        """``freeze_exempt_fields`` are writable under a freeze on a serious event only."""
        return self.serious

    # --- SAE clock ------------------------------------------------------------------------
    @property
    def sae_due_at(self):
        return sae_clock.due_at(self.site_aware_at) if self.serious else None

    def sae_clock(self, now=None) -> SaeClock | None:
        """The SAE reporting clock at ``now`` (``None``: not serious); see ``sae_clock``."""
        return sae_clock.state(
            serious=self.serious,
            site_aware_at=self.site_aware_at,
            reported_at=self.sae_reported_at,
            now=now or timezone.now(),
        )

    @property
    def serious_criteria(self) -> list[str]:
        return [label for name, label in SERIOUS_CRITERIA if getattr(self, name)]

    # --- rules on this record ---------------------------------------------------------------
    def clean(self):
        """Every rule of ``AE_RULES`` on this record; each names the field it refuses."""
        errors: dict[str, list[str]] = {}
        for rule in AE_RULES:
            for field, message in rule(self):
                errors.setdefault(field, []).append(message)
        if errors:
            raise ValidationError(errors)


# --- the rules of one AE record: each yields (field, message) for what it refuses ---------------


def _coded_to_its_term(ae: AdverseEvent):
    term = ae.term if ae.term_id else None
    if term is None:
        return
    if term.is_other_specify and not ae.verbatim_term.strip():
        yield (
            "verbatim_term",
            f'"{term.term}" is an "Other, specify" term: give the verbatim name of the event.',
        )
    if ae.grade is not None and ae.grade not in term.allowed_grades:
        yield (
            "grade",
            f"{term.term} has no grade {ae.grade}: its grades are "
            f"{grades_text(term.allowed_grades)}.",
        )


def _onset_within_the_subjects_trial(ae: AdverseEvent):
    if not ae.onset_date:
        return
    if ae.onset_date > latest_today():
        yield "onset_date", "The onset date is in the future."
    subject = ae.subject if ae.subject_id else None
    if subject is None:
        return
    if subject.consent_date and ae.onset_date < subject.consent_date:
        yield (
            "onset_date",
            f"The onset date is before the informed consent ({subject.consent_date:%Y-%m-%d}): "
            "events before consent are medical history, not adverse events.",
        )
    died = subject.status == SubjectStatus.DIED and subject.status_date
    if died and ae.onset_date > subject.status_date:
        yield (
            "onset_date",
            f"The onset date is after {subject}'s death ({subject.status_date:%Y-%m-%d}).",
        )


def _ended_or_ongoing(ae: AdverseEvent):
    if ae.ongoing and ae.end_date:
        yield "end_date", "Give an end date or mark the event ongoing, not both."
    elif not ae.ongoing and not ae.end_date:
        yield "end_date", "Give the end date, or mark the event ongoing."
    if ae.end_date:
        if ae.onset_date and ae.end_date < ae.onset_date:
            yield "end_date", "The end date is before the onset date."
        if ae.end_date > latest_today():
            yield "end_date", "The end date is in the future."


def _serious_with_criteria(ae: AdverseEvent):
    criteria = [name for name in SERIOUS_CRITERIA_FIELDS if getattr(ae, name)]
    if ae.serious and not criteria:
        yield "serious", "A serious event needs at least one seriousness criterion."
    if not ae.serious and criteria:
        yield (
            "serious",
            "Seriousness criteria are given but the event is not marked serious: mark it "
            "serious or clear the criteria.",
        )


def _sae_clock_times(ae: AdverseEvent):
    now = timezone.now()
    if ae.serious and ae.site_aware_at is None:
        yield (
            "site_aware_at",
            "Give the date and time the site became aware of the serious event: the "
            "24-hour reporting clock starts then.",
        )
    if ae.site_aware_at is not None:
        if ae.site_aware_at > now:
            yield "site_aware_at", "The time the site became aware is in the future."
        # The onset is a date at the site: compare it with the site's date of the awareness.
        site_zone = ae.subject.site.zoneinfo if ae.subject_id else None
        if ae.onset_date and timezone.localdate(ae.site_aware_at, site_zone) < ae.onset_date:
            yield "site_aware_at", "The site cannot have become aware before the onset."
    if ae.sae_reported_at is not None:
        if not ae.serious:
            yield "sae_reported_at", "Only a serious event is reported to the sponsor."
        elif ae.site_aware_at and ae.sae_reported_at < ae.site_aware_at:
            yield (
                "sae_reported_at",
                "The report to the sponsor cannot be before the site became aware.",
            )
        if ae.sae_reported_at > now:
            yield "sae_reported_at", "The report time is in the future."


def _fatal_means_grade_5(ae: AdverseEvent):
    fatal = ae.outcome == AeOutcome.FATAL
    if ae.grade == 5 and ae.outcome and not fatal:
        yield "outcome", "A grade 5 event is fatal: its outcome must be fatal."
    if fatal and ae.grade is not None and ae.grade != 5:
        yield "grade", "A fatal outcome means grade 5 (death related to the event)."


def _death_recorded_only_when_fatal(ae: AdverseEvent):
    if ae.grade == 5 or ae.outcome == AeOutcome.FATAL:
        if not ae.death_date:
            yield "death_date", "A fatal (grade 5) event needs the date of death."
        if not (ae.serious and ae.sc_death):
            yield (
                "sc_death",
                'A fatal (grade 5) event is serious with the criterion "results in death".',
            )
        if ae.end_date and ae.death_date and ae.end_date != ae.death_date:
            yield "end_date", "A fatal event ends on the date of death."
        return
    if ae.death_date:
        yield "death_date", "A date of death is given only for a fatal (grade 5) event."
    if ae.sc_death:
        yield "sc_death", '"Results in death" applies only to a fatal (grade 5) event.'


def _death_date_plausible(ae: AdverseEvent):
    if not ae.death_date:
        return
    if ae.onset_date and ae.death_date < ae.onset_date:
        yield "death_date", "The date of death is before the onset date."
    if ae.death_date > latest_today():
        yield "death_date", "The date of death is in the future."


def _outcome_fits_the_end(ae: AdverseEvent):
    if ae.outcome in ENDED_OUTCOMES and ae.ongoing:
        yield (
            "ongoing",
            f'An event with outcome "{AeOutcome(ae.outcome).label}" has ended: give its end '
            "date instead of marking it ongoing.",
        )
    if ae.outcome in ONGOING_OUTCOMES and ae.end_date:
        yield (
            "outcome",
            f'An event with outcome "{AeOutcome(ae.outcome).label}" is ongoing: clear the '
            "end date, or choose the outcome of an ended event.",
        )


def _treatment_described(ae: AdverseEvent):
    if ae.treatment_given and not ae.treatment_details.strip():
        yield "treatment_details", "Describe the treatment given for the event."
    if not ae.treatment_given and ae.treatment_details.strip():
        yield (
            "treatment_given",
            "A treatment is described: tick 'treatment given' or clear the description.",
        )


AE_RULES = (
    _coded_to_its_term,
    _onset_within_the_subjects_trial,
    _ended_or_ongoing,
    _serious_with_criteria,
    _sae_clock_times,
    _fatal_means_grade_5,
    _death_recorded_only_when_fatal,
    _death_date_plausible,
    _outcome_fits_the_end,
    _treatment_described,
)


class AeCausality(CrfRecord):
    """Causality and action taken for one study drug of the subject's arm."""

    site_lookup = "adverse_event__subject__site"
    subject_lookup = "adverse_event__subject"
    url_parent = "adverse_event"

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
    created = None
    updated = None

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
        return f"{drug_name(self.drug)}: {self.get_causality_display().lower()}"

    def save(self, *args, **kwargs):
        self.related = self.causality in RELATED_CAUSALITIES
        super().save(*args, **kwargs)

    def clean(self):
        self.related = self.causality in RELATED_CAUSALITIES
