"""End of treatment, survival follow-up and end of study: the rules, and the subject's status.

The only write path for these CRFs: site staff and investigators of the site, for a consented,
randomized subject, a reason for any change. Status changes go through
``subjects.services.change_status`` (the one place the status path is written) in the CRF's
transaction; what a later change elsewhere could break is also watched by ``edit_checks``.
"""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CharField, Max

from core.audit import audited_delete, audited_save
from core.errors import DomainError, refuse_unknown_fields
from randomization.selectors import randomization_date  # the one definition (site date)
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .models import (
    EndOfStudy,
    EndOfStudyReason,
    EndOfTreatment,
    SubsequentTherapy,
    SurvivalFollowUp,
    VitalStatus,
)

EOT_FIELDS = ("last_dose_date", "end_reason", "adverse_event", "reason_other")
FOLLOW_UP_FIELDS = ("contact_date", "vital_status", "last_known_alive_date")
EOS_FIELDS = (
    "end_date",
    "end_reason",
    "death_date",
    "death_cause",
    "death_adverse_event",
    "death_cause_other",
)

# The status each end-of-study reason brings the subject to.
STATUS_AT_END_OF_STUDY = {
    EndOfStudyReason.DEATH: SubjectStatus.DIED,
    EndOfStudyReason.CONSENT_WITHDRAWN: SubjectStatus.WITHDRAWN,
    EndOfStudyReason.LOST: SubjectStatus.WITHDRAWN,
    EndOfStudyReason.STUDY_END: SubjectStatus.COMPLETED,
}
FINAL_STATUSES = {SubjectStatus.WITHDRAWN, SubjectStatus.DIED, SubjectStatus.COMPLETED}


class SurvivalError(DomainError):
    pass


# --- shared rules ---------------------------------------------------------------------------------


def _guard(subject: Subject, user) -> date:
    """The checks every write starts with; returns the randomization date."""
    subject_services.require_crf_entry(subject, user)
    randomized = randomization_date(subject)
    if randomized is None:
        raise SurvivalError(
            f"{subject} is not randomized: end of treatment, follow-up and end of study are "
            "recorded for randomized subjects only."
        )
    return randomized


def _require_reason(reason: str) -> None:
    if not (reason or "").strip():
        raise SurvivalError("A reason for change is required to change saved data.")


def _not_before_randomization(record, randomized: date, *names: str) -> None:
    errors = {}
    for name in names:
        value = getattr(record, name)
        if value and value < randomized:
            label = record._meta.get_field(name).verbose_name
            errors[name] = f"The {label} is before randomization ({randomized:%Y-%m-%d})."
    if errors:
        raise ValidationError(errors)


def last_known_alive(subject: Subject) -> date | None:
    """The latest last known alive date of the subject's follow-up contacts."""
    return SurvivalFollowUp.objects.filter(subject=subject).aggregate(
        latest=Max("last_known_alive_date")
    )["latest"]


def death_date_of(subject: Subject) -> date | None:
    """The date of death as recorded: the end of study's, else the subject's status date."""
    recorded = (
        EndOfStudy.objects.filter(subject=subject, death_date__isnull=False)
        .values_list("death_date", flat=True)
        .first()
    )
    if recorded:
        return recorded
    if subject.status == SubjectStatus.DIED:
        return subject.status_date
    return None


def _blank_text(model, name: str, value):
    """None for a text field (a form's empty answer) is stored as "", as Django keeps text."""
    field = model._meta.get_field(name)
    if value is None and isinstance(field, CharField) and not field.null:
        return ""
    return value


def _move_status(subject: Subject, status: str, *, user, on_date: date, reason: str) -> None:
    try:
        subject_services.change_status(subject, status, user=user, reason=reason, on_date=on_date)
    except subject_services.TransitionNotAllowed as exc:
        raise SurvivalError(exc.message) from exc


# --- end of treatment -----------------------------------------------------------------------------


def _check_end_of_treatment(eot: EndOfTreatment, randomized: date) -> None:
    _not_before_randomization(eot, randomized, "last_dose_date")
    eos = EndOfStudy.objects.filter(subject_id=eot.subject_id).first()
    if eos and eot.last_dose_date and eot.last_dose_date > eos.end_date:
        raise ValidationError(
            {"last_dose_date": f"The last dose is after the end of study ({eos.end_date})."}
        )
    death = death_date_of(eot.subject)
    if death and eot.last_dose_date and eot.last_dose_date > death:
        raise ValidationError(
            {"last_dose_date": f"The last dose is after the date of death ({death:%Y-%m-%d})."}
        )


def _locked_without(model, subject: Subject, what: str) -> Subject:
    """The subject, locked until the transaction ends, once it is sure to have no ``model`` record
    yet: a subject has one, and a second is a correction of the first."""
    subject = Subject.objects.select_for_update().get(pk=subject.pk)
    if model.objects.filter(subject=subject).exists():
        raise SurvivalError(f"The {what} of {subject} is already recorded: correct it instead.")
    return subject


def record_end_of_treatment(subject: Subject, *, user, **data) -> EndOfTreatment:
    """Record the end of study treatment; a randomized subject becomes "treatment ended"."""
    randomized = _guard(subject, user)
    refuse_unknown_fields(data, EOT_FIELDS, "end of treatment form", error=SurvivalError)
    with transaction.atomic():
        subject = _locked_without(EndOfTreatment, subject, "end of treatment")
        eot = EndOfTreatment(subject=subject, **data)
        eot.reason_other = eot.reason_other or ""
        _check_end_of_treatment(eot, randomized)
        audited_save(eot, user=user, reason="End of treatment recorded")
        if subject.status == SubjectStatus.RANDOMIZED:
            _move_status(
                subject,
                SubjectStatus.TREATMENT_ENDED,
                user=user,
                on_date=eot.last_dose_date,
                reason=f"End of treatment: {eot.get_end_reason_display().lower()}",
            )
    return eot


def update_end_of_treatment(eot: EndOfTreatment, *, user, reason: str, **changes):
    """Correct the end of treatment (the status and its date stay as they are)."""
    randomized = _guard(eot.subject, user)
    _require_reason(reason)
    refuse_unknown_fields(changes, EOT_FIELDS, "end of treatment form", error=SurvivalError)
    with transaction.atomic():
        fresh = EndOfTreatment.objects.select_for_update().get(pk=eot.pk)
        for name, value in changes.items():
            setattr(fresh, name, _blank_text(EndOfTreatment, name, value))
        _check_end_of_treatment(fresh, randomized)
        audited_save(fresh, user=user, reason=reason)
    eot.refresh_from_db()
    return eot


# --- survival follow-up ---------------------------------------------------------------------------


def _clean_therapies(therapies) -> list[tuple[str, date]]:
    cleaned = []
    for row in therapies or ():
        agent = str(row.get("agent") or "").strip()
        start = row.get("start_date")
        if not agent and not start:
            continue
        if not agent or not start:
            raise ValidationError(
                "Give both the agent and the start date of each subsequent anticancer therapy."
            )
        cleaned.append((agent, start))
    return cleaned


def _check_follow_up(fu: SurvivalFollowUp, therapies, randomized: date, subject: Subject) -> None:
    _not_before_randomization(fu, randomized, "contact_date", "last_known_alive_date")
    death = death_date_of(subject)
    if death and fu.vital_status == VitalStatus.ALIVE:
        raise ValidationError(
            {"vital_status": f"{subject} is recorded as died on {death:%Y-%m-%d}, not alive."}
        )
    if death and fu.last_known_alive_date and fu.last_known_alive_date > death:
        raise ValidationError(
            {
                "last_known_alive_date": (
                    f"{subject} died on {death:%Y-%m-%d}: the last known alive date cannot be "
                    "after the date of death."
                )
            }
        )
    for agent, start in therapies:
        if start < randomized:
            raise ValidationError(
                f"{agent}: the start date is before randomization ({randomized:%Y-%m-%d})."
            )
        if fu.contact_date and start > fu.contact_date:
            raise ValidationError(f"{agent}: the start date is after the date of contact.")


def _save_therapies(fu: SurvivalFollowUp, wanted, *, user, reason: str) -> None:
    """Make the contact's therapy rows ``wanted``: unchanged rows stay, others are added or
    removed (each with the reason, in the audit trail)."""
    current = {(row.agent, row.start_date): row for row in fu.therapies.all()}
    for key in wanted:
        if key not in current:
            agent, start = key
            audited_save(
                SubsequentTherapy(follow_up=fu, agent=agent, start_date=start),
                user=user,
                reason=reason,
            )
    for key, row in current.items():
        if key not in wanted:
            audited_delete(row, user=user, reason=reason)


def record_follow_up(subject: Subject, *, user, therapies=(), **data) -> SurvivalFollowUp:
    """Record a survival follow-up contact and the anticancer therapies started since
    (``therapies``: mappings with ``agent`` and ``start_date``)."""
    randomized = _guard(subject, user)
    refuse_unknown_fields(data, FOLLOW_UP_FIELDS, "survival follow-up form", error=SurvivalError)
    wanted = _clean_therapies(therapies)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        last = SurvivalFollowUp.objects.filter(subject=subject).order_by("-contact_number").first()
        fu = SurvivalFollowUp(
            subject=subject, contact_number=(last.contact_number if last else 0) + 1, **data
        )
        _check_follow_up(fu, wanted, randomized, subject)
        audited_save(fu, user=user, reason="Survival follow-up contact recorded")
        _save_therapies(fu, wanted, user=user, reason="Survival follow-up contact recorded")
    return fu


def update_follow_up(
    fu: SurvivalFollowUp, *, user, reason: str, therapies=None, **changes
) -> SurvivalFollowUp:
    """Correct a follow-up contact; ``therapies`` (when given) is the complete list of rows."""
    randomized = _guard(fu.subject, user)
    _require_reason(reason)
    refuse_unknown_fields(changes, FOLLOW_UP_FIELDS, "survival follow-up form", error=SurvivalError)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=fu.subject_id)
        fresh = SurvivalFollowUp.objects.select_for_update().get(pk=fu.pk)
        for name, value in changes.items():
            setattr(fresh, name, value)
        wanted = (
            _clean_therapies(therapies)
            if therapies is not None
            else [(row.agent, row.start_date) for row in fresh.therapies.all()]
        )
        _check_follow_up(fresh, wanted, randomized, subject)
        audited_save(fresh, user=user, reason=reason)
        _save_therapies(fresh, wanted, user=user, reason=reason)
    fu.refresh_from_db()
    return fu


# --- end of study ---------------------------------------------------------------------------------


def _check_end_of_study(eos: EndOfStudy, randomized: date, subject: Subject) -> None:
    _not_before_randomization(eos, randomized, "end_date", "death_date")
    alive = last_known_alive(subject)
    if eos.death_date and alive and eos.death_date < alive:
        raise ValidationError(
            {
                "death_date": (
                    f"The date of death is before the last known alive date of a follow-up "
                    f"contact ({alive:%Y-%m-%d})."
                )
            }
        )
    eot = EndOfTreatment.objects.filter(subject=subject).first()
    if eot and eos.end_date and eos.end_date < eot.last_dose_date:
        raise ValidationError(
            {"end_date": f"The end of study is before the last dose ({eot.last_dose_date})."}
        )
    if eos.death_date and eot and eos.death_date < eot.last_dose_date:
        raise ValidationError(
            {"death_date": f"The date of death is before the last dose ({eot.last_dose_date})."}
        )
    target = STATUS_AT_END_OF_STUDY.get(eos.end_reason)
    if subject.status == SubjectStatus.DIED:
        if eos.end_reason != EndOfStudyReason.DEATH:
            raise ValidationError(
                {
                    "end_reason": (
                        f"{subject} is recorded as died on {subject.status_date:%Y-%m-%d}: "
                        "the end of study reason is death."
                    )
                }
            )
        if eos.death_date and subject.status_date and eos.death_date != subject.status_date:
            raise ValidationError(
                {
                    "death_date": (
                        f"{subject} is recorded as died on {subject.status_date:%Y-%m-%d} (a "
                        "fatal adverse event or a status change): the date of death must be the "
                        "same."
                    )
                }
            )
    elif subject.status in FINAL_STATUSES and subject.status != target:
        raise ValidationError(
            {
                "end_reason": (
                    f"{subject} is {subject.get_status_display().lower()}: the end of study "
                    f"reason cannot be {eos.get_end_reason_display().lower()}."
                )
            }
        )


def _status_date_of(eos: EndOfStudy) -> date:
    return eos.death_date if eos.end_reason == EndOfStudyReason.DEATH else eos.end_date


def record_end_of_study(subject: Subject, *, user, **data) -> EndOfStudy:
    """Record the end of study; the subject's status follows (README: "End of treatment...")."""
    randomized = _guard(subject, user)
    refuse_unknown_fields(data, EOS_FIELDS, "end of study form", error=SurvivalError)
    with transaction.atomic():
        subject = _locked_without(EndOfStudy, subject, "end of study")
        eos = EndOfStudy(subject=subject, **data)
        eos.death_cause = eos.death_cause or ""
        eos.death_cause_other = eos.death_cause_other or ""
        eos.full_clean()  # the record's own rules first: a death needs its date
        _check_end_of_study(eos, randomized, subject)
        audited_save(eos, user=user, reason="End of study recorded")
        target = STATUS_AT_END_OF_STUDY[eos.end_reason]
        if subject.status != target:
            _move_status(
                subject,
                target,
                user=user,
                on_date=_status_date_of(eos),
                reason=f"End of study: {eos.get_end_reason_display().lower()}",
            )
    return eos


def update_end_of_study(eos: EndOfStudy, *, user, reason: str, **changes) -> EndOfStudy:
    """Correct the end of study. The reason cannot move the subject back along the status path:
    a correction that would (e.g. death to withdrawal after the status became died) is refused;
    one that moves it forward (withdrawal to death: withdrawn is final) too."""
    randomized = _guard(eos.subject, user)
    _require_reason(reason)
    refuse_unknown_fields(changes, EOS_FIELDS, "end of study form", error=SurvivalError)
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=eos.subject_id)
        fresh = EndOfStudy.objects.select_for_update().get(pk=eos.pk)
        for name, value in changes.items():
            setattr(fresh, name, _blank_text(EndOfStudy, name, value))
        fresh.full_clean()
        _check_end_of_study(fresh, randomized, subject)
        audited_save(fresh, user=user, reason=reason)
        target = STATUS_AT_END_OF_STUDY[fresh.end_reason]
        if subject.status != target:
            _move_status(subject, target, user=user, on_date=_status_date_of(fresh), reason=reason)
    eos.refresh_from_db()
    return eos
