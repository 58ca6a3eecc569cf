"""Subject rules: registration, consent, demographics, status through the trial.

Every function takes the acting ``user``; changes to saved data need a ``reason``.
"""

from __future__ import annotations

from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from accounts.services import sync_admin_access
from core import access, registry
from core.audit import audited_delete, audited_save
from core.errors import DomainError
from core.roles import DATA_ENTRY_ROLES, STUDY_WIDE_ROLES
from core.site_time import today_at
from core.validators import latest_today

from .models import Site, Subject, SubjectStatus

# The subject's path through the trial. Randomization is reached only through
# ``mark_randomized`` (called by the randomization service), never by a plain status change.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    SubjectStatus.SCREENING: {SubjectStatus.SCREEN_FAILED, SubjectStatus.RANDOMIZED},
    SubjectStatus.RANDOMIZED: {
        SubjectStatus.TREATMENT_ENDED,
        SubjectStatus.WITHDRAWN,
        SubjectStatus.DIED,
        SubjectStatus.COMPLETED,
    },
    SubjectStatus.TREATMENT_ENDED: {
        SubjectStatus.WITHDRAWN,
        SubjectStatus.DIED,
        SubjectStatus.COMPLETED,
    },
    SubjectStatus.SCREEN_FAILED: set(),
    SubjectStatus.WITHDRAWN: set(),
    SubjectStatus.DIED: set(),
    SubjectStatus.COMPLETED: set(),
}
DEMOGRAPHIC_FIELDS = (
    "screening_number",
    "screening_date",
    "initials",
    "date_of_birth",
    "age_at_screening",
    "sex",
)


def _save_subject_data(subject: Subject, *, user, reason: str) -> Subject:
    """Save a change to the subject's own data and, in the same transaction, tell the apps above
    that keep something derived from it (an app's ``on_subject_data_change``: eligibility
    voids a signature that covered the old data), whatever path made the change."""
    with transaction.atomic():
        for dependent in registry.on_subject_data_change():
            dependent(subject, user=user, reason=reason)
        return audited_save(subject, user=user, reason=reason)


def allowed_status_changes(subject: Subject) -> list[SubjectStatus]:
    """The statuses a user may move the subject to by a status change (randomization apart)."""
    return [
        status
        for status in SubjectStatus
        if status in ALLOWED_TRANSITIONS[subject.status] and status != SubjectStatus.RANDOMIZED
    ]


class TransitionNotAllowed(DomainError):
    pass


class ConsentRequired(DomainError):
    pass


def register_subject(
    *,
    site: Site,
    user,
    screening_number: str,
    sex: str,
    date_of_birth: date | None = None,
    age_at_screening: int | None = None,
    initials: str = "",
    screening_date: date | None = None,
) -> Subject:
    """Register a screened patient and assign the next subject identifier of the site
    (screened today at the site unless ``screening_date``: a clinical date is the site's).

    The site row is locked for the transaction, so two coordinators registering at once get
    consecutive numbers, never the same one.
    """
    access.require_data_entry(user, site)
    if not site.active:
        raise DomainError(f"Site {site.code} is not active: it cannot register subjects.")
    with transaction.atomic():
        site = Site.objects.select_for_update().get(pk=site.pk)
        last = Subject.objects.filter(site=site).order_by("-sequence").first()
        sequence = (last.sequence if last else 0) + 1
        if sequence > 9999:
            raise DomainError(f"Site {site.code} has used all 9999 subject numbers.")
        subject = Subject(
            site=site,
            sequence=sequence,
            subject_identifier=f"{site.code}-{sequence:04d}",
            screening_number=screening_number.strip(),
            screening_date=screening_date or today_at(site),
            initials=initials.strip().upper(),
            date_of_birth=date_of_birth,
            age_at_screening=age_at_screening,
            sex=sex,
        )
        try:
            with transaction.atomic():
                audited_save(subject, user=user, reason="Subject registered at screening")
        except IntegrityError as exc:
            raise DomainError(
                f"Screening number {subject.screening_number} is already used at site {site.code}."
            ) from exc
    return subject


def record_consent(
    subject: Subject, *, user, consent_date: date, consent_version: str, reason: str = ""
) -> Subject:
    """Record (or, with a reason, correct) the informed consent."""
    access.require_data_entry(user, subject)
    if subject.is_consented and not reason.strip():
        raise DomainError("Consent is already recorded: give a reason to correct it.")
    subject.consent_date = consent_date
    subject.consent_version = consent_version.strip()
    # A first consent is new information on an existing record: it carries its own reason.
    reason = reason.strip() or "Informed consent recorded"
    return _save_subject_data(subject, user=user, reason=reason)


def require_crf_entry(subject: Subject, user) -> None:
    """The checks every write of a subject's CRF starts with: ``user`` may enter data on the
    subject (``access.require_data_entry``), and the subject has consented."""
    access.require_data_entry(user, subject)
    ensure_consented(subject)


def ensure_consented(subject: Subject) -> None:
    """Every CRF calls this first: no clinical data before informed consent."""
    if not subject.is_consented:
        raise ConsentRequired(
            f"{subject.subject_identifier} has no informed consent recorded: "
            "record the consent before entering any CRF data."
        )


def update_demographics(subject: Subject, *, user, reason: str, **changes) -> Subject:
    access.require_data_entry(user, subject)
    unknown = set(changes) - set(DEMOGRAPHIC_FIELDS)
    if unknown:
        raise DomainError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}.")
    for field, value in changes.items():
        setattr(subject, field, value)
    try:
        with transaction.atomic():
            return _save_subject_data(subject, user=user, reason=reason)
    except IntegrityError as exc:
        raise DomainError(
            f"Screening number {subject.screening_number} is already used at this site."
        ) from exc


def _transition(
    subject: Subject, new_status: str, *, user, reason: str, on_date: date, guarded: bool = False
):
    allowed = ALLOWED_TRANSITIONS[subject.status]
    if new_status not in allowed:
        raise TransitionNotAllowed(
            f"{subject.subject_identifier} is {subject.get_status_display().lower()}: it cannot "
            f"become {SubjectStatus(new_status).label.lower()}."
            + (
                f" Allowed: {', '.join(sorted(SubjectStatus(s).label.lower() for s in allowed))}."
                if allowed
                else " That status is final."
            )
        )
    if on_date is None or on_date > latest_today():
        raise DomainError("Give the date of the status change; it cannot be in the future.")
    if on_date < subject.screening_date:
        raise DomainError(
            f"The status change cannot be dated before screening ({subject.screening_date})."
        )
    if subject.consent_date and on_date < subject.consent_date:
        raise DomainError(
            f"The status change cannot be dated before the informed consent "
            f"({subject.consent_date})."
        )
    if subject.status_date and on_date < subject.status_date:
        # e.g. a death dated before randomization: the path runs forward in time.
        raise DomainError(
            f"The status change cannot be dated before {subject.subject_identifier} became "
            f"{subject.get_status_display().lower()} ({subject.status_date})."
        )
    subject.status = new_status
    subject.status_date = on_date
    return audited_save(
        subject,
        user=user,
        reason=reason,
        validate_only=("status", "status_date"),
        update_fields=["status", "status_date", "updated"],
        guarded=guarded,
    )


def change_status(subject: Subject, new_status: str, *, user, reason: str, on_date: date):
    """Move the subject along the trial path; refuses transitions the path does not allow."""
    access.require_data_entry(user, subject)
    if new_status == SubjectStatus.RANDOMIZED:
        raise TransitionNotAllowed(
            "Subjects become randomized only through randomization, not by a status change."
        )
    with transaction.atomic():
        locked = Subject.objects.select_for_update().get(pk=subject.pk)
        _transition(locked, new_status, user=user, reason=reason, on_date=on_date)
    subject.refresh_from_db()
    return subject


def mark_randomized(
    subject: Subject, *, user, on_date: date, reason: str, guarded: bool = False
) -> Subject:
    """For the randomization service only, inside its transaction (it holds the locks).
    ``guarded``: the service ran the write guard on ``subject`` in this transaction already."""
    return _transition(
        subject,
        SubjectStatus.RANDOMIZED,
        user=user,
        reason=reason,
        on_date=on_date,
        guarded=guarded,
    )


def delete_subject(subject: Subject, *, user, reason: str) -> None:
    """Delete a subject registered in error (only while still in screening, and before any CRF
    data refer to it: CRF records are never deleted along with their subject)."""
    access.require_data_entry(user, subject)
    try:
        with transaction.atomic():
            audited_delete(subject, user=user, reason=reason)
    except ProtectedError as exc:
        kinds = sorted({str(obj._meta.verbose_name) for obj in exc.protected_objects})
        raise DomainError(
            f"{subject.subject_identifier} has CRF data ({', '.join(kinds)}): a subject with "
            "CRF data cannot be deleted. Correct the data, or record a screen failure."
        ) from exc


def save_site(site: Site, *, user, reason: str = "") -> Site:
    """Open or change a site. Its code is part of every subject identifier: it never changes."""
    if not site._state.adding:
        saved_code = Site.objects.filter(pk=site.pk).values_list("code", flat=True).get()
        if site.code != saved_code:
            raise DomainError(
                f"Site {saved_code}'s code cannot change: it is part of its subject identifiers."
            )
    return audited_save(site, user=user, reason=reason)


def save_membership(membership, *, user, reason: str = ""):
    """Create or change a site membership and keep the user's role groups (and so whether the
    admin lets them in, ``is_staff``) in step with it."""
    from django.contrib.auth.models import Group

    from .models import SiteMembership

    member = membership.user
    if membership.active and membership.role in DATA_ENTRY_ROLES:
        study_wide = set(member.groups.values_list("name", flat=True)) & STUDY_WIDE_ROLES
        if study_wide:
            raise DomainError(
                f"{member} is a {', '.join(sorted(study_wide)).replace('_', ' ')}: a study-wide "
                "role does not enter clinical data at a site."
            )
    with transaction.atomic():
        try:
            with transaction.atomic():
                audited_save(membership, user=user, reason=reason)
        except IntegrityError as exc:
            raise DomainError(
                f"{membership.user} already has a membership at site {membership.site.code}."
            ) from exc
        held = set(
            SiteMembership.objects.filter(user=member, active=True).values_list("role", flat=True)
        )
        for role in {m.role for m in SiteMembership.objects.filter(user=member)} | {
            membership.role
        }:
            group = Group.objects.get(name=role)
            if role in held:
                member.groups.add(group)
            else:
                member.groups.remove(group)
        sync_admin_access(member)  # site roles work in the site app: no admin
    return membership
