"""RECIST v1.1 tumor assessment rules: baseline lesions, assessments, the derived response.

Every save recomputes the subject's assessments through ``efficacy.recist``: the nadir, and so a
later response, depends on the earlier ones and the baseline. A recomputed assessment records the
reason of the change that caused it. Baseline lesions are refused once a follow-up exists.
Site staff and investigators of the site, for a consented subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from core.audit import audited_save
from core.errors import DomainError, refuse_unknown_fields
from subjects import services as subject_services
from subjects.models import Subject

from . import recist
from .models import (
    MAX_TARGETS,
    MAX_TARGETS_PER_ORGAN,
    NonTargetAssessment,
    NonTargetLesion,
    Organ,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)

LESION_FIELDS = ("organ", "location", "baseline_date", "method")
TARGET_FIELDS = (*LESION_FIELDS, "diameter")
ASSESSMENT_FIELDS = (
    "assessment_date",
    "method",
    "new_lesions",
    "new_lesions_description",
    "investigator_response",
)
DERIVED_FIELDS = (
    "target_sum",
    "nadir",
    "change_from_baseline",
    "change_from_nadir",
    "target_response",
    "non_target_response",
    "derived_response",
)


class EfficacyError(DomainError):
    pass


def _lock(subject: Subject) -> Subject:
    return Subject.objects.select_for_update().get(pk=subject.pk)


def _next_number(model, subject: Subject) -> int:
    last = model.objects.filter(subject=subject).aggregate(n=Max("number"))["n"]
    return (last or 0) + 1


def _refuse_after_follow_up(subject: Subject, what: str) -> None:
    first = TumorAssessment.objects.filter(subject=subject).order_by("assessment_date").first()
    if first is not None:
        raise EfficacyError(
            f"{what} are chosen at baseline, and {subject.subject_identifier} already has "
            f"tumor assessment {first.number} ({first.assessment_date:%Y-%m-%d}): correct an "
            "existing lesion instead, or record a new lesion at the assessment."
        )


def _check_target_count(subject: Subject, organ: str, *, exclude_pk=None) -> None:
    others = TargetLesion.objects.filter(subject=subject).exclude(pk=exclude_pk)
    if exclude_pk is None and others.count() >= MAX_TARGETS:
        raise EfficacyError(
            f"{subject.subject_identifier} already has {MAX_TARGETS} target lesions, the most "
            "RECIST 1.1 allows: record this one as a non-target lesion."
        )
    if others.filter(organ=organ).count() >= MAX_TARGETS_PER_ORGAN:
        raise ValidationError(
            {
                "organ": f"{subject.subject_identifier} already has {MAX_TARGETS_PER_ORGAN} target "
                f"lesions in this organ ({Organ(organ).label}), the most RECIST 1.1 allows per "
                "organ: record this one as a non-target lesion."
            }
        )


# --- baseline lesions --------------------------------------------------------------------------


def add_target_lesion(subject: Subject, *, user, **data) -> TargetLesion:
    subject_services.require_crf_entry(subject, user)
    refuse_unknown_fields(data, TARGET_FIELDS, "target lesion form", error=EfficacyError)
    with transaction.atomic():
        subject = _lock(subject)
        _refuse_after_follow_up(subject, "Target lesions")
        _check_target_count(subject, data.get("organ") or "")
        lesion = TargetLesion(subject=subject, number=_next_number(TargetLesion, subject), **data)
        audited_save(lesion, user=user, reason="Target lesion recorded at baseline")
    return lesion


def update_target_lesion(lesion: TargetLesion, *, user, reason: str, **changes) -> TargetLesion:
    subject_services.require_crf_entry(lesion.subject, user)
    refuse_unknown_fields(changes, TARGET_FIELDS, "target lesion form", error=EfficacyError)
    with transaction.atomic():
        subject = _lock(lesion.subject)
        fresh = TargetLesion.objects.select_for_update().get(pk=lesion.pk)
        for name, value in changes.items():
            setattr(fresh, name, value)
        _check_target_count(subject, fresh.organ, exclude_pk=fresh.pk)
        audited_save(fresh, user=user, reason=reason)
        rederive(subject, user=user, reason=reason)
    lesion.refresh_from_db()
    return lesion


def add_non_target_lesion(subject: Subject, *, user, **data) -> NonTargetLesion:
    subject_services.require_crf_entry(subject, user)
    refuse_unknown_fields(data, LESION_FIELDS, "non-target lesion form", error=EfficacyError)
    with transaction.atomic():
        subject = _lock(subject)
        _refuse_after_follow_up(subject, "Non-target lesions")
        lesion = NonTargetLesion(
            subject=subject, number=_next_number(NonTargetLesion, subject), **data
        )
        audited_save(lesion, user=user, reason="Non-target lesion recorded at baseline")
    return lesion


def update_non_target_lesion(
    lesion: NonTargetLesion, *, user, reason: str, **changes
) -> NonTargetLesion:
    subject_services.require_crf_entry(lesion.subject, user)
    refuse_unknown_fields(changes, LESION_FIELDS, "non-target lesion form", error=EfficacyError)
    with transaction.atomic():
        _lock(lesion.subject)
        fresh = NonTargetLesion.objects.select_for_update().get(pk=lesion.pk)
        for name, value in changes.items():
            setattr(fresh, name, value)
        audited_save(fresh, user=user, reason=reason)
    lesion.refresh_from_db()
    return lesion


# --- assessments -------------------------------------------------------------------------------


def _diameter(lesion: TargetLesion, value) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise EfficacyError(
            f"{lesion.code}: {value!r} is not a diameter: give millimetres, e.g. 23.5."
        ) from None


def _by_lesion(given: Mapping | None, lesions: list, what: str) -> dict:
    """``given`` keyed by lesion id (keys: the lesion, its number, or its code "T1"/"NT1")."""
    by_number = {lesion.number: lesion for lesion in lesions}
    by_code = {lesion.code: lesion for lesion in lesions}
    by_pk = {lesion.pk: lesion for lesion in lesions}
    found = {}
    for key, value in (given or {}).items():
        if isinstance(key, TargetLesion | NonTargetLesion):
            lesion = by_pk.get(key.pk)
        elif isinstance(key, str) and key in by_code:
            lesion = by_code[key]
        else:
            try:
                lesion = by_number.get(int(key))
            except (TypeError, ValueError):
                lesion = None
        if lesion is None:
            raise EfficacyError(f"{key} is not a baseline {what} of this subject.")
        found[lesion.pk] = value
    return found


def _check_assessment_date(subject: Subject, assessment: TumorAssessment, lesions) -> None:
    if not lesions:
        raise EfficacyError(
            f"{subject.subject_identifier} has no baseline lesion recorded: record the baseline "
            "target and non-target lesions first."
        )
    if assessment.assessment_date is None:
        return
    baseline = max(lesion.baseline_date for lesion in lesions)
    if assessment.assessment_date <= baseline:
        raise ValidationError(
            {
                "assessment_date": f"A follow-up assessment comes after the baseline scan "
                f"({baseline:%Y-%m-%d})."
            }
        )
    same_day = TumorAssessment.objects.filter(
        subject=subject, assessment_date=assessment.assessment_date
    ).exclude(pk=assessment.pk)
    if same_day.exists():
        raise ValidationError(
            {
                "assessment_date": f"Assessment {same_day.first().number} already has this date: "
                "correct it instead."
            }
        )


def _inputs(subject: Subject, *, pending: TumorAssessment | None = None, measured=None, nt=None):
    """The recist inputs of ``subject`` from the database; ``pending`` (an assessment being
    recorded or corrected) with its ``measured`` diameters and ``nt`` statuses replaces what
    the database holds of it."""
    targets = list(TargetLesion.objects.filter(subject=subject).order_by("number"))
    non_targets = list(NonTargetLesion.objects.filter(subject=subject).order_by("number"))
    lesions = [
        recist.TargetLesion(key=t.pk, diameter=t.diameter, lymph_node=t.lymph_node) for t in targets
    ]
    assessments = {a.pk: a for a in TumorAssessment.objects.filter(subject=subject)}
    diameters: dict = {pk: {} for pk in assessments}
    statuses: dict = {pk: {} for pk in assessments}
    for assessment_id, lesion_id, diameter in TargetMeasurement.objects.filter(
        assessment__subject=subject
    ).values_list("assessment_id", "lesion_id", "diameter"):
        diameters[assessment_id][lesion_id] = diameter
    for assessment_id, lesion_id, status in NonTargetAssessment.objects.filter(
        assessment__subject=subject
    ).values_list("assessment_id", "lesion_id", "status"):
        statuses[assessment_id][lesion_id] = status
    if pending is not None:
        assessments[pending.pk] = pending  # pk None: the one being recorded
        diameters[pending.pk] = measured
        statuses[pending.pk] = nt
    return lesions, [n.pk for n in non_targets], assessments, diameters, statuses


def _derive(subject: Subject, **pending) -> list[tuple[TumorAssessment, recist.TimePoint]]:
    lesions, nt_keys, assessments, diameters, statuses = _inputs(subject, **pending)
    ordered = sorted(assessments.values(), key=lambda a: (a.assessment_date, a.number))
    points = recist.derive(
        lesions,
        nt_keys,
        [
            recist.Assessment(
                day=a.assessment_date,
                targets=diameters[a.pk],
                non_targets=statuses[a.pk],
                new_lesions=a.new_lesions,
            )
            for a in ordered
        ],
    )
    return list(zip(ordered, points, strict=True))


def _set_derived(assessment: TumorAssessment, point: recist.TimePoint) -> bool:
    """Store ``point`` on ``assessment``; True when a derived value changed."""
    values = {
        "target_sum": point.target_sum,
        "nadir": point.nadir,
        "change_from_baseline": point.change_from_baseline,
        "change_from_nadir": point.change_from_nadir,
        "target_response": point.target.value if point.target else "",
        "non_target_response": point.non_target.value if point.non_target else "",
        "derived_response": point.overall.value,
    }
    changed = False
    for name, value in values.items():
        current = getattr(assessment, name)
        if isinstance(value, Decimal) and current is not None:
            current = Decimal(current)
        if current != value:
            setattr(assessment, name, value)
            changed = True
    return changed


def rederive(subject: Subject, *, user, reason: str, skip=None) -> list[TumorAssessment]:
    """Recompute every assessment of ``subject`` and save those whose derivation changed, with
    ``reason`` (the change that caused it). Returns the assessments saved."""
    saved = []
    for assessment, point in _derive(subject):
        if assessment.pk == skip:
            continue
        if _set_derived(assessment, point):
            audited_save(
                assessment,
                user=user,
                reason=f"RECIST 1.1 response recomputed: {reason}",
                validate_only=DERIVED_FIELDS,
            )
            saved.append(assessment)
    return saved


def _save_children(assessment, targets, non_targets, diameters, statuses, *, user, reason):
    current_m = {m.lesion_id: m for m in assessment.measurements.all()} if assessment.pk else {}
    current_s = (
        {s.lesion_id: s for s in assessment.non_target_statuses.all()} if assessment.pk else {}
    )
    for lesion in targets:
        row = current_m.get(lesion.pk) or TargetMeasurement(assessment=assessment, lesion=lesion)
        value = diameters[lesion.pk]
        if row.pk is None or row.diameter != value:
            row.diameter = value
            audited_save(row, user=user, reason=reason)
    for lesion in non_targets:
        row = current_s.get(lesion.pk) or NonTargetAssessment(assessment=assessment, lesion=lesion)
        value = statuses[lesion.pk]
        if row.pk is None or row.status != value:
            row.status = value
            audited_save(row, user=user, reason=reason)


def _read_measurements(subject, given_measurements, given_non_targets, base=None):
    targets = list(TargetLesion.objects.filter(subject=subject).order_by("number"))
    non_targets = list(NonTargetLesion.objects.filter(subject=subject).order_by("number"))
    diameters = dict(base[0]) if base else {t.pk: None for t in targets}
    statuses = (
        dict(base[1])
        if base
        else {n.pk: recist.NonTargetStatus.NOT_EVALUATED.value for n in non_targets}
    )
    by_pk = {t.pk: t for t in targets}
    for pk, value in _by_lesion(given_measurements, targets, "target lesion").items():
        diameters[pk] = _diameter(by_pk[pk], value)
    for pk, value in _by_lesion(given_non_targets, non_targets, "non-target lesion").items():
        value = value or recist.NonTargetStatus.NOT_EVALUATED.value
        try:
            statuses[pk] = recist.NonTargetStatus(value).value
        except ValueError:
            raise EfficacyError(
                f"{value!r} is not a non-target status: absent, present, progression or "
                "not_evaluated."
            ) from None
    return targets, non_targets, diameters, statuses


def record_assessment(
    subject: Subject,
    *,
    user,
    measurements: Mapping | None = None,
    non_targets: Mapping | None = None,
    **data,
) -> TumorAssessment:
    """Record a follow-up tumor assessment and its derived RECIST 1.1 response."""
    subject_services.require_crf_entry(subject, user)
    refuse_unknown_fields(data, ASSESSMENT_FIELDS, "tumor assessment form", error=EfficacyError)
    with transaction.atomic():
        subject = _lock(subject)
        targets, nts, diameters, statuses = _read_measurements(subject, measurements, non_targets)
        assessment = TumorAssessment(
            subject=subject, number=_next_number(TumorAssessment, subject), **data
        )
        _check_assessment_date(subject, assessment, targets + nts)
        assessment.full_clean(exclude=DERIVED_FIELDS)
        reason = f"Tumor assessment {assessment.number} recorded"
        for candidate, point in _derive(
            subject, pending=assessment, measured=diameters, nt=statuses
        ):
            if candidate is assessment:
                _set_derived(assessment, point)
        audited_save(assessment, user=user, reason=reason)
        _save_children(assessment, targets, nts, diameters, statuses, user=user, reason=reason)
        rederive(subject, user=user, reason=reason, skip=assessment.pk)
    return assessment


def update_assessment(
    assessment: TumorAssessment,
    *,
    user,
    reason: str,
    measurements: Mapping | None = None,
    non_targets: Mapping | None = None,
    **changes,
) -> TumorAssessment:
    """Correct an assessment (its fields, measurements or non-target statuses), with a reason;
    the subject's derived responses are recomputed."""
    subject_services.require_crf_entry(assessment.subject, user)
    if not (reason or "").strip():
        raise EfficacyError("A reason for change is required to change saved data.")
    refuse_unknown_fields(changes, ASSESSMENT_FIELDS, "tumor assessment form", error=EfficacyError)
    with transaction.atomic():
        subject = _lock(assessment.subject)
        fresh = TumorAssessment.objects.select_for_update().get(pk=assessment.pk)
        base = (
            dict(fresh.measurements.values_list("lesion_id", "diameter")),
            dict(fresh.non_target_statuses.values_list("lesion_id", "status")),
        )
        targets, nts, diameters, statuses = _read_measurements(
            subject, measurements, non_targets, base=base
        )
        for lesion in targets:
            diameters.setdefault(lesion.pk, None)
        for lesion in nts:
            statuses.setdefault(lesion.pk, recist.NonTargetStatus.NOT_EVALUATED.value)
        for name, value in changes.items():
            setattr(fresh, name, value)
        _check_assessment_date(subject, fresh, targets + nts)
        fresh.full_clean(exclude=DERIVED_FIELDS)
        _save_children(fresh, targets, nts, diameters, statuses, user=user, reason=reason)
        for candidate, point in _derive(subject, pending=fresh, measured=diameters, nt=statuses):
            if candidate is fresh:
                _set_derived(fresh, point)
        audited_save(fresh, user=user, reason=reason)
        rederive(subject, user=user, reason=reason, skip=fresh.pk)
    assessment.refresh_from_db()
    return assessment
