"""Sites, site memberships and subjects.

A subject's identifier is ``<site code>-<4-digit sequence>``, assigned at screening by
``services.register_subject`` under a lock on the site row, and never changes.
"""

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone

from core.audit import AuditedManager, AuditedQuerySet
from core.crf import AuditedModel, CrfRecord
from core.errors import DomainError
from core.roles import SITE_ROLES, Role
from core.site_time import default_time_zone, validate_time_zone, zone_of
from core.validators import not_before_study_start, not_in_future

# The oldest plausible age at screening (a date of birth giving more is a wrong year).
MAX_AGE = 120


class Site(AuditedModel):
    site_lookup = "pk"

    code = models.CharField(
        max_length=10,
        unique=True,
        validators=[
            RegexValidator(r"^[A-Z0-9]{2,10}$", "Use 2 to 10 capital letters or digits, e.g. 101.")
        ],
        help_text="Short code used in subject identifiers, e.g. 101.",
    )
    name = models.CharField(max_length=200)
    country = models.CharField(max_length=100)
    active = models.BooleanField(default=True)
    time_zone = models.CharField(
        max_length=64,
        default=default_time_zone,
        validators=[validate_time_zone],
        help_text=(
            "IANA time zone name, e.g. Asia/Shanghai or Europe/Paris: the site's staff enter and "
            "read date-times in this zone (they are stored in UTC)."
        ),
    )

    class Meta:
        ordering = ["code"]

    def __str__(self):
        return f"{self.code} {self.name}"

    @property
    def zoneinfo(self):
        """The site's zone (``zoneinfo.ZoneInfo``)."""
        return zone_of(self.time_zone)


class SiteMembership(AuditedModel):
    """A user's role at a site: site staff, investigator or monitor."""

    site_lookup = "site"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="site_memberships"
    )
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="memberships")
    role = models.CharField(
        max_length=20, choices=[(r.value, r.label) for r in Role if r in SITE_ROLES]
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["site__code", "user__username"]
        constraints = [
            models.UniqueConstraint(fields=["user", "site"], name="one_membership_per_user_site")
        ]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()} at {self.site.code}"


class SubjectStatus(models.TextChoices):
    SCREENING = "screening", "Screening"
    SCREEN_FAILED = "screen_failed", "Screen failed"
    RANDOMIZED = "randomized", "Randomized"
    TREATMENT_ENDED = "treatment_ended", "Treatment ended"
    WITHDRAWN = "withdrawn", "Withdrawn"
    DIED = "died", "Died"
    COMPLETED = "completed", "Completed"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"


class SubjectQuerySet(AuditedQuerySet):
    def randomized_or_later(self):
        return self.exclude(status__in=[SubjectStatus.SCREENING, SubjectStatus.SCREEN_FAILED])


class Subject(CrfRecord):
    site_lookup = "site"
    subject_lookup = "pk"
    url_name = "subjects:detail"

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="subjects")
    sequence = models.PositiveIntegerField(editable=False)
    subject_identifier = models.CharField(max_length=20, unique=True, editable=False)
    screening_number = models.CharField(
        max_length=30,
        help_text="The number of the patient's line in the site's screening log.",
    )
    screening_date = models.DateField(
        default=timezone.localdate, validators=[not_in_future, not_before_study_start]
    )
    initials = models.CharField(
        max_length=4,
        blank=True,
        validators=[RegexValidator(r"^[A-Z-]{2,4}$", "Use 2 to 4 capital letters (or -).")],
        help_text="Direct identifier: never exported to the sponsor.",
    )
    date_of_birth = models.DateField(
        null=True,
        blank=True,
        validators=[not_in_future],
        help_text="Direct identifier: never exported to the sponsor (age is).",
    )
    age_at_screening = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(120)],
        help_text="Only where local rules forbid collecting the date of birth.",
    )
    sex = models.CharField(max_length=1, choices=Sex.choices)
    consent_date = models.DateField(
        null=True, blank=True, validators=[not_in_future, not_before_study_start]
    )
    consent_version = models.CharField(max_length=30, blank=True)
    status = models.CharField(
        max_length=20,
        choices=SubjectStatus.choices,
        default=SubjectStatus.SCREENING,
        db_index=True,
    )
    status_date = models.DateField(
        null=True,
        blank=True,
        validators=[not_in_future, not_before_study_start],
        help_text="Clinical date of the latest status change.",
    )

    objects = AuditedManager.from_queryset(SubjectQuerySet)()

    class Meta:
        ordering = ["site__code", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["site", "sequence"], name="subject_sequence_per_site"),
            models.UniqueConstraint(
                fields=["site", "screening_number"], name="screening_number_per_site"
            ),
            models.CheckConstraint(
                condition=models.Q(date_of_birth__isnull=False)
                | models.Q(age_at_screening__isnull=False),
                name="subject_has_dob_or_age",
            ),
        ]

    def __str__(self):
        return self.subject_identifier

    def clean(self):
        errors = {}
        if self.date_of_birth is None and self.age_at_screening is None:
            errors["date_of_birth"] = "Give the date of birth, or the age where it may not be kept."
        if self.date_of_birth and self.age_at_screening is not None:
            errors["age_at_screening"] = "Give the date of birth or the age, not both."
        if self.consent_date and not self.consent_version.strip():
            errors["consent_version"] = "Give the version of the consent form that was signed."
        if self.consent_version.strip() and not self.consent_date:
            errors["consent_date"] = "Give the date the consent form was signed."
        if self.date_of_birth and self.consent_date and self.consent_date < self.date_of_birth:
            errors["consent_date"] = "The consent date is before the date of birth."
        if self.date_of_birth and self.date_of_birth > (self.screening_date or date.max):
            errors["date_of_birth"] = "The date of birth is after the screening date."
        elif self.date_of_birth and self.screening_date:
            age = self.age_on(self.screening_date)
            if age > MAX_AGE:
                errors["date_of_birth"] = (
                    f"This date of birth gives an age of {age} at screening: check the year."
                )
        if errors:
            raise ValidationError(errors)

    @property
    def is_consented(self) -> bool:
        return self.consent_date is not None

    def age_on(self, on: date) -> int | None:
        """Age in whole years on ``on`` (from the date of birth, else the age at screening)."""
        if self.date_of_birth:
            dob = self.date_of_birth
            return on.year - dob.year - ((on.month, on.day) < (dob.month, dob.day))
        return self.age_at_screening

    @property
    def age(self) -> int | None:
        """Age at consent (at screening until consented): what the sponsor sees."""
        return self.age_on(self.consent_date or self.screening_date)

    def delete(self, *args, **kwargs):
        """Only a subject still in screening (registered in error) may be deleted."""
        if self.status != SubjectStatus.SCREENING:
            raise DomainError(
                f"{self.subject_identifier} is {self.get_status_display().lower()}: only a subject "
                "still in screening can be deleted; a randomized subject never is."
            )
        return super().delete(*args, **kwargs)
