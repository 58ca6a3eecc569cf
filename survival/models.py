"""End of treatment, survival follow-up and end of study: the CRFs after the last dose.

Rules of one record live in ``clean()`` (run by ``core.audit.audited_save``); rules that read
other records (the randomization date, the subject's status, the follow-up contacts, the AE that
caused the death) live in ``services``. Clinical dates are dates.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from core.crf import SUBJECT_ORDER, CrfRecord
from core.validators import bounded_text, not_before_study_start, not_in_future


class EndOfTreatmentReason(models.TextChoices):
    PROGRESSION = "progression", "Disease progression"
    TOXICITY = "toxicity", "Toxicity (adverse event)"
    WITHDRAWAL = "withdrawal", "Withdrawal by the subject"
    INVESTIGATOR = "investigator", "Investigator decision"
    DEATH = "death", "Death"
    OTHER = "other", "Other"


class EndOfTreatment(CrfRecord):
    """The end of study treatment: the date of the last dose of any study drug, and why."""

    url_name = "survival:end_of_treatment"

    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.PROTECT, related_name="end_of_treatment"
    )
    last_dose_date = models.DateField(
        "date of last dose",
        validators=[not_before_study_start, not_in_future],
        help_text="The last dose of any study drug.",
    )
    end_reason = models.CharField(
        "reason for ending treatment", max_length=20, choices=EndOfTreatmentReason.choices
    )
    adverse_event = models.ForeignKey(
        "adverse_events.AdverseEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="adverse event",
        help_text="The AE that ended treatment (required when the reason is toxicity).",
    )
    reason_other = models.CharField(
        "other reason",
        max_length=200,
        blank=True,
        validators=[bounded_text(200)],
        help_text="Required when the reason is other.",
    )

    class Meta(CrfRecord.Meta):
        verbose_name = "end of treatment"
        verbose_name_plural = "ends of treatment"

    def __str__(self):
        return f"{self.subject} end of treatment ({self.last_dose_date:%Y-%m-%d})"

    def clean(self):
        errors = {}
        if self.end_reason == EndOfTreatmentReason.TOXICITY and not self.adverse_event_id:
            errors["adverse_event"] = "Treatment ended for toxicity: choose the adverse event."
        if self.end_reason != EndOfTreatmentReason.TOXICITY and self.adverse_event_id:
            errors["adverse_event"] = "An adverse event is linked only when the reason is toxicity."
        if self.end_reason == EndOfTreatmentReason.OTHER and not self.reason_other.strip():
            errors["reason_other"] = "Give the other reason."
        if self.end_reason != EndOfTreatmentReason.OTHER and self.reason_other.strip():
            errors["reason_other"] = "An other reason is given only when the reason is other."
        if (
            self.adverse_event_id
            and self.subject_id
            and self.adverse_event.subject_id != self.subject_id
        ):
            errors["adverse_event"] = "That adverse event is another subject's."
        if errors:
            raise ValidationError(errors)


class VitalStatus(models.TextChoices):
    ALIVE = "alive", "Alive"
    DEAD = "dead", "Dead"
    LOST = "lost", "Lost to follow-up"


class SurvivalFollowUp(CrfRecord):
    """One survival follow-up contact (every 12 weeks after the end of treatment)."""

    url_name = "survival:follow_up"
    url_args = ("contact_number",)

    subject = models.ForeignKey(
        "subjects.Subject", on_delete=models.PROTECT, related_name="survival_follow_ups"
    )
    contact_number = models.PositiveIntegerField(
        "contact number", editable=False, help_text="Numbered 1, 2, 3… per subject."
    )
    contact_date = models.DateField(
        "date of contact", validators=[not_before_study_start, not_in_future]
    )
    vital_status = models.CharField("vital status", max_length=10, choices=VitalStatus.choices)
    last_known_alive_date = models.DateField(
        "last known alive date",
        validators=[not_before_study_start, not_in_future],
        help_text="The last date the subject is known to have been alive (the contact date when "
        "the subject was reached).",
    )

    class Meta:
        ordering = [*SUBJECT_ORDER, "contact_number"]
        verbose_name = "survival follow-up contact"
        constraints = [
            models.UniqueConstraint(
                fields=["subject", "contact_number"], name="survival_contact_number_per_subject"
            )
        ]

    def __str__(self):
        return (
            f"{self.subject} survival contact {self.contact_number} ({self.contact_date:%Y-%m-%d})"
        )

    def clean(self):
        errors = {}
        if (
            self.last_known_alive_date
            and self.contact_date
            and self.last_known_alive_date > self.contact_date
        ):
            errors["last_known_alive_date"] = (
                "The last known alive date is after the date of contact."
            )
        if (
            self.vital_status == VitalStatus.ALIVE
            and self.last_known_alive_date
            and self.contact_date
            and self.last_known_alive_date != self.contact_date
        ):
            errors["last_known_alive_date"] = (
                "The subject was alive at the contact: the last known alive date is the date "
                "of contact."
            )
        if errors:
            raise ValidationError(errors)


class SubsequentTherapy(CrfRecord):
    """An anticancer therapy started after the study treatment (a row of a follow-up contact)."""

    site_lookup = "follow_up__subject__site"
    subject_lookup = "follow_up__subject"
    url_parent = "follow_up"

    follow_up = models.ForeignKey(
        SurvivalFollowUp, on_delete=models.PROTECT, related_name="therapies"
    )
    agent = models.CharField("agent or procedure", max_length=200, validators=[bounded_text(200)])
    start_date = models.DateField("start date", validators=[not_before_study_start, not_in_future])
    created = None
    updated = None

    class Meta:
        ordering = ["follow_up", "start_date", "pk"]
        verbose_name = "subsequent anticancer therapy"
        verbose_name_plural = "subsequent anticancer therapies"

    def __str__(self):
        return f"{self.agent} from {self.start_date:%Y-%m-%d}"

    def clean(self):
        if not self.agent.strip():
            raise ValidationError({"agent": "Name the agent or procedure."})


class EndOfStudyReason(models.TextChoices):
    DEATH = "death", "Death"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Withdrawal of consent"
    LOST = "lost", "Lost to follow-up"
    STUDY_END = "study_end", "End of the study"


class DeathCause(models.TextChoices):
    PROGRESSION = "progression", "Disease progression"
    ADVERSE_EVENT = "adverse_event", "Adverse event"
    OTHER = "other", "Other"


class EndOfStudy(CrfRecord):
    """The subject's end of study: the date and why; for a death, its date and cause."""

    url_name = "survival:end_of_study"

    subject = models.OneToOneField(
        "subjects.Subject", on_delete=models.PROTECT, related_name="end_of_study"
    )
    end_date = models.DateField(
        "date of end of study", validators=[not_before_study_start, not_in_future]
    )
    end_reason = models.CharField(
        "reason for the end of study", max_length=20, choices=EndOfStudyReason.choices
    )
    death_date = models.DateField(
        "date of death",
        null=True,
        blank=True,
        validators=[not_before_study_start, not_in_future],
    )
    death_cause = models.CharField(
        "cause of death", max_length=20, choices=DeathCause.choices, blank=True
    )
    death_adverse_event = models.ForeignKey(
        "adverse_events.AdverseEvent",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="adverse event that caused the death",
    )
    death_cause_other = models.CharField(
        "other cause of death", max_length=200, blank=True, validators=[bounded_text(200)]
    )

    class Meta(CrfRecord.Meta):
        verbose_name = "end of study"
        verbose_name_plural = "ends of study"

    def __str__(self):
        return f"{self.subject} end of study ({self.end_date:%Y-%m-%d})"

    def clean(self):
        errors: dict[str, str] = {}
        self._death_rules(errors)
        self._cause_rules(errors)
        if self.death_date and self.end_date and self.end_date < self.death_date:
            errors["end_date"] = "The end of study is before the date of death."
        if errors:
            raise ValidationError(errors)

    def _death_rules(self, errors: dict) -> None:
        if self.end_reason == EndOfStudyReason.DEATH:
            if not self.death_date:
                errors["death_date"] = "The subject died: give the date of death."
            if not self.death_cause:
                errors["death_cause"] = "The subject died: give the cause of death."
            return
        for name in ("death_date", "death_cause"):
            if getattr(self, name):
                errors[name] = "A death is recorded only when the reason is death."

    def _cause_rules(self, errors: dict) -> None:
        by_ae = self.death_cause == DeathCause.ADVERSE_EVENT
        if by_ae and not self.death_adverse_event_id:
            errors["death_adverse_event"] = "Choose the adverse event that caused the death."
        elif not by_ae and self.death_adverse_event_id:
            errors["death_adverse_event"] = (
                "An adverse event is linked only when the cause of death is an adverse event."
            )
        elif self.death_adverse_event_id and self.death_adverse_event.subject_id != self.subject_id:
            errors["death_adverse_event"] = "That adverse event is another subject's."
        other = bool(self.death_cause_other.strip())
        if self.death_cause == DeathCause.OTHER and not other:
            errors["death_cause_other"] = "Give the other cause of death."
        if self.death_cause != DeathCause.OTHER and other:
            errors["death_cause_other"] = "An other cause is given only when the cause is other."
