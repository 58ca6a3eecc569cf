"""Adverse event rules: recording, follow-up, causality per study drug, death, the SAE clock.

The only write path for AEs: site staff and investigators of the site, for a consented subject;
every rule is checked again on the whole record at each update. Causality is one entry per study
drug of the subject's arm (none before randomization). A fatal AE moves the subject to "died" in
the same transaction; lowering its grade later does not bring the subject back (the status is
corrected on its own, with its reason). An AE no longer serious loses its report time.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core import access
from core.audit import audited_save
from core.errors import DomainError, refuse_unknown_fields
from randomization import selectors as randomization_selectors
from randomization.arms import DRUGS_OF_ARM, Arm, StudyDrug, drug_name
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from .models import (
    SERIOUS_CRITERIA_FIELDS,
    ActionTaken,
    AdverseEvent,
    AeCausality,
    Causality,
    CtcaeTerm,
)

# The CRF fields a service caller may give (``causality`` is handled apart).
AE_FIELDS = (
    "term",
    "verbatim_term",
    "grade",
    "onset_date",
    "end_date",
    "ongoing",
    "serious",
    *SERIOUS_CRITERIA_FIELDS,
    "site_aware_at",
    "outcome",
    "death_date",
    "immune_related",
    "treatment_given",
    "treatment_details",
)
REQUIRED_ON_RECORD = ("term", "grade", "onset_date", "outcome")


class AdverseEventError(DomainError):
    pass


def arm_of(subject: Subject) -> Arm | None:
    """The subject's arm (None before randomization), from the randomization app."""
    arm = randomization_selectors.arm_of(subject)
    return Arm(arm) if arm else None


def study_drugs_of(subject: Subject) -> tuple[str, ...]:
    """The study drugs the subject takes: those of the arm, none before randomization."""
    arm = arm_of(subject)
    return tuple(DRUGS_OF_ARM[arm]) if arm else ()


def _resolve_term(value) -> CtcaeTerm | None:
    """A term given as a CtcaeTerm, or by its MedDRA code."""
    if value is None or isinstance(value, CtcaeTerm):
        return value
    term = CtcaeTerm.objects.filter(meddra_code=str(value).strip()).first()
    if term is None:
        raise ValidationError({"term": f"There is no CTCAE v5.0 term with MedDRA code {value}."})
    return term


def _clean_causality(subject: Subject, given: Mapping | None, current: dict) -> dict:
    """The causality of each drug after this change, checked against the subject's arm."""
    drugs = study_drugs_of(subject)
    merged = dict(current)
    for drug, assessment in (given or {}).items():
        drug = str(drug)
        if drug not in StudyDrug.values:
            raise AdverseEventError(f"{drug!r} is not a study drug of this trial.")
        if drug not in drugs:
            if not drugs:
                raise AdverseEventError(
                    f"{subject} is not randomized and takes no study drug: no causality is "
                    "assessed."
                )
            raise AdverseEventError(
                f"{drug_name(drug)} is not a study drug of {subject}'s arm "
                f"({Arm(arm_of(subject)).label}): assess "
                f"{' and '.join(drug_name(d) for d in drugs)}."
            )
        assessment = dict(assessment or {})
        causality = assessment.pop("causality", None)
        action = assessment.pop("action_taken", None)
        if assessment:
            raise AdverseEventError(
                f"Unknown causality fields for {drug_name(drug)}: {', '.join(sorted(assessment))}."
            )
        if causality not in Causality.values:
            raise AdverseEventError(
                f"Give the causality of the event to {drug_name(drug)} (not related, unlikely, "
                "possible, probable or definite)."
            )
        if action not in ActionTaken.values:
            raise AdverseEventError(
                f"Give the action taken with {drug_name(drug)} (dose not changed, reduced, "
                "interrupted, withdrawn, or not applicable)."
            )
        merged[drug] = {"causality": causality, "action_taken": action}
    missing = [d for d in drugs if d not in merged]
    if missing:
        raise AdverseEventError(
            "Give the causality and action taken for "
            f"{' and '.join(drug_name(d) for d in missing)} "
            f"(the study drug{'s' if len(missing) > 1 else ''} of {subject}'s arm)."
        )
    extra = [d for d in merged if d not in drugs]
    if extra:
        raise AdverseEventError(
            f"{subject} does not take {' or '.join(drug_name(d) for d in extra)}: "
            "its causality cannot be kept on this event."
        )
    return merged


def _current_causality(ae: AdverseEvent) -> dict:
    return {
        row.drug: {"causality": row.causality, "action_taken": row.action_taken}
        for row in ae.causalities.all()
    }


def _save_causality(ae: AdverseEvent, wanted: dict, *, user, reason: str) -> None:
    rows = {row.drug: row for row in ae.causalities.all()}
    for drug, assessment in wanted.items():
        row = rows.get(drug)
        if row is None:
            row = AeCausality(adverse_event=ae, drug=drug, **assessment)
            audited_save(row, user=user, reason=reason)
        elif (row.causality, row.action_taken) != (
            assessment["causality"],
            assessment["action_taken"],
        ):
            row.causality = assessment["causality"]
            row.action_taken = assessment["action_taken"]
            audited_save(row, user=user, reason=reason)


def _record_death(ae: AdverseEvent, subject: Subject, *, user, reason: str) -> None:
    """A fatal event: the subject has died on the date of death (same transaction)."""
    if ae.grade != 5:
        return
    subject.refresh_from_db()
    if subject.status == SubjectStatus.DIED:
        if subject.status_date and subject.status_date != ae.death_date:
            raise ValidationError(
                {
                    "death_date": (
                        f"{subject} is recorded as died on {subject.status_date:%Y-%m-%d}: the "
                        "date of death of a fatal event must be the same."
                    )
                }
            )
        return
    try:
        subject_services.change_status(
            subject, SubjectStatus.DIED, user=user, reason=reason, on_date=ae.death_date
        )
    except subject_services.TransitionNotAllowed as exc:
        raise AdverseEventError(
            f"A fatal (grade 5) event means the subject died, but {exc.message[0].lower()}"
            f"{exc.message[1:]}"
        ) from exc


def record_adverse_event(subject: Subject, *, user, **data) -> AdverseEvent:
    """Record a new adverse event of ``subject``; refuses with a sentence when a rule is broken.

    ``data``: the fields of ``AE_FIELDS`` (``term`` as a CtcaeTerm or a MedDRA code) and
    ``causality``: ``{drug: {"causality": ..., "action_taken": ...}}``, one per drug of the arm.
    """
    subject_services.require_crf_entry(subject, user)
    refuse_unknown_fields(
        data, (*AE_FIELDS, "causality"), "adverse event form", error=AdverseEventError
    )
    missing = [f for f in REQUIRED_ON_RECORD if data.get(f) in (None, "")]
    if missing:
        labels = [str(AdverseEvent._meta.get_field(f).verbose_name) for f in missing]
        raise ValidationError(
            {f: f"Give the {label}." for f, label in zip(missing, labels, strict=True)}
        )
    causality_given = data.pop("causality", None)
    data["term"] = _resolve_term(data.get("term"))
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=subject.pk)
        last = AdverseEvent.objects.filter(subject=subject).order_by("-ae_number").first()
        ae = AdverseEvent(subject=subject, ae_number=(last.ae_number if last else 0) + 1, **data)
        causality = _clean_causality(subject, causality_given, {})
        audited_save(ae, user=user, reason="Adverse event recorded")
        _save_causality(ae, causality, user=user, reason="Adverse event recorded")
        _record_death(
            ae,
            subject,
            user=user,
            reason=f"Fatal adverse event recorded: AE {ae.ae_number} {ae.term}",
        )
    return ae


def update_adverse_event(ae: AdverseEvent, *, user, reason: str, **changes) -> AdverseEvent:
    """A follow-up or correction of ``ae``, with a reason; every rule is checked again."""
    subject_services.require_crf_entry(ae.subject, user)
    if not (reason or "").strip():
        raise AdverseEventError("A reason for change is required to change saved data.")
    refuse_unknown_fields(
        changes, (*AE_FIELDS, "causality"), "adverse event form", error=AdverseEventError
    )
    causality_given = changes.pop("causality", None)
    if "term" in changes:
        changes["term"] = _resolve_term(changes["term"])
    with transaction.atomic():
        subject = Subject.objects.select_for_update().get(pk=ae.subject_id)
        fresh = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
        for name, value in changes.items():
            setattr(fresh, name, value)
        if not fresh.serious and fresh.sae_reported_at is not None:
            fresh.sae_reported_at = None  # no longer an SAE: the report time goes to history
        causality = _clean_causality(subject, causality_given, _current_causality(fresh))
        audited_save(fresh, user=user, reason=reason)
        _save_causality(fresh, causality, user=user, reason=reason)
        _record_death(
            fresh, subject, user=user, reason=f"{reason.strip()} (fatal AE {fresh.ae_number})"
        )
    ae.refresh_from_db()
    return ae


def mark_sae_reported(
    ae: AdverseEvent, *, user, reported_at: datetime, reason: str = ""
) -> AdverseEvent:
    """Record when the serious AE was reported to the sponsor (correcting it needs a reason).
    Allowed while the AE or its casebook is frozen: safety reporting does not wait."""
    access.require_safety_reporting(user, ae)
    subject_services.ensure_consented(ae.subject)
    if reported_at is None:
        raise ValidationError({"sae_reported_at": "Give the date and time of the report."})
    if timezone.is_naive(reported_at):
        reported_at = timezone.make_aware(reported_at)
    with transaction.atomic():
        fresh = AdverseEvent.objects.select_for_update().get(pk=ae.pk)
        if not fresh.serious:
            raise AdverseEventError(
                f"AE {fresh.ae_number} of {fresh.subject} is not serious: only a serious event "
                "is reported to the sponsor within 24 hours."
            )
        if fresh.sae_reported_at is not None and not (reason or "").strip():
            raise AdverseEventError(
                f"AE {fresh.ae_number} was already reported at "
                f"{fresh.sae_reported_at:%Y-%m-%d %H:%M} UTC: give a reason to correct the time."
            )
        fresh.sae_reported_at = reported_at
        late = reported_at > fresh.sae_due_at
        audited_save(
            fresh,
            user=user,
            reason=(reason or "").strip()
            or ("SAE reported to the sponsor" + (" (late)" if late else "")),
        )
    ae.refresh_from_db()
    return ae
