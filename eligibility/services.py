"""Eligibility rules: entering the CRF, evaluating it, the investigator's signature, and the
checks the randomization service relies on.

Views, admin, demo and other apps call these functions; the rules live nowhere else. Any change
to what a signature covers (``signed_data``) voids the signature in the same transaction. Reads
are in ``selectors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from accounts import lockout
from accounts.models import AuthEvent
from core import access
from core.audit import audited_delete, audited_save
from core.errors import DomainError, ReasonRequired
from core.site_time import today_at
from subjects import services as subject_services
from subjects.models import Subject, SubjectStatus

from . import settings as elig_settings
from . import units
from .evaluation import Evaluation, Status, evaluate_eligibility
from .models import (
    SIGNED_DATA_VERSION,
    STRATIFICATION_FIELDS,
    EligibilityAssessment,
    EligibilitySignature,
    PriorTherapy,
    SignatureKind,
)
from .selectors import active_signature, get_assessment
from .signed_data import CRF_FIELDS, data_hash, hash_matches

ELIGIBLE_MEANING = "I confirm this subject meets all eligibility criteria."
SCREEN_FAILURE_MEANING = (
    "I confirm this subject does not meet the eligibility criteria and is a screen failure."
)


class SignatureRefused(DomainError):
    """The e-signature was not recorded (wrong password, wrong role, result not signable)."""


class StratificationIncomplete(DomainError):
    """A stratification factor is missing or outside what the randomization accepts."""


class NotRandomizable(DomainError):
    """The subject may not be randomized (on that date); the message says exactly why."""


# --- entering data -------------------------------------------------------------------------------


def save_assessment(
    subject: Subject,
    *,
    user,
    data: dict,
    reason: str = "",
    prior_therapies: list[dict] | None = None,
) -> EligibilityAssessment:
    """Create the subject's assessment or change it; a change needs ``reason``.

    Only site staff and investigators of the subject's site enter data, and only after consent.
    The record is validated as a whole (``full_clean``) before anything is written: bad input
    saves nothing. A change to the signed data voids the active signature, with the same reason.

    Labs: ``<lab>_reported`` and ``<lab>_unit`` (the SI ``<lab>`` is computed, ``lab_values``).
    ``prior_therapies``, when given, is the whole list of the prior therapy rows after the save
    (``save_prior_therapies``), saved in the same transaction.
    """
    subject_services.require_crf_entry(subject, user)
    unknown = set(data) - set(CRF_FIELDS)
    if unknown:
        raise DomainError(f"These are not eligibility CRF fields: {', '.join(sorted(unknown))}.")
    with transaction.atomic():
        assessment = (
            EligibilityAssessment.objects.select_for_update().filter(subject=subject).first()
        )
        if assessment is None:
            assessment = EligibilityAssessment(subject=subject)
            before = None
        else:
            before = data_hash(assessment)
        assessment.subject = subject
        for field, value in lab_values(assessment, data).items():
            setattr(assessment, field, value)
        if before is None or data_hash(assessment) != before:
            audited_save(assessment, user=user, reason=reason)
        if prior_therapies is not None:
            _replace_prior_therapies(assessment, prior_therapies, user=user, reason=reason)
        _refuse_no_with_rows(assessment)
        if before is not None:
            _void_if_changed(assessment, before, user=user, reason=reason)
    return assessment


_NOT_GIVEN = object()


def lab_values(assessment: EligibilityAssessment, data: dict) -> dict:
    """``data`` with each lab it gives complete: the value as reported, its unit, and the SI value
    computed from them with the one conversion table (``units.to_si``).

    A lab is given by its value as reported and/or its unit (the other kept from ``assessment``),
    or by its SI value alone, which is then a value reported in the SI unit. An SI value given
    with the value as reported must be the one computed from it. Without a value the unit is
    cleared; a lab with one unit (INR, creatinine clearance) gets it. The SI value stays empty
    for a value not in a unit of the lab or not plausible in it: the model's rules then refuse
    the value as reported with a sentence (``rules._labs_plausible_in_their_unit``).
    """
    data = dict(data)
    errors = {}
    for name, spec in units.LABS.items():
        value_field, unit_field = units.reported_field(name), units.unit_field(name)
        if value_field not in data and unit_field not in data:
            if name not in data:
                continue
            data[value_field], data[unit_field] = data[name], spec.si_unit.code
        given_si = data.pop(name, _NOT_GIVEN)
        value = data.get(value_field, getattr(assessment, value_field))
        code = data.get(unit_field, getattr(assessment, unit_field)) or ""
        if value is None or value == "":
            code = ""
        elif not code and len(spec.units) == 1:
            code = spec.si_unit.code
        data[unit_field] = code
        si = _si_value(name, units.as_decimal(value), code)
        if (
            given_si not in (_NOT_GIVEN, None)
            and si is not None
            and units.as_decimal(given_si) != si
        ):
            errors[name] = (
                f"The SI value is computed: {units.plain(units.as_decimal(value))} "
                f"{spec.unit(code).label} is {units.plain(si)} {spec.si_unit.label}, not "
                f"{given_si}. Give the value as reported and its unit only."
            )
        data[name] = si
    if errors:
        raise ValidationError(errors)
    return data


def _si_value(name: str, value, code: str):
    """The SI value of a plausible value in a unit of the lab; else None."""
    spec = units.LABS[name]
    if value is None or not spec.accepts(code):
        return None
    low, high = elig_settings.plausible_range(name, code)
    if not low <= value <= high:
        return None
    return units.to_si(name, value, code)


def save_prior_therapies(
    assessment: EligibilityAssessment, *, user, rows: list[dict], reason: str = ""
) -> list[PriorTherapy]:
    """Make ``rows`` the assessment's prior systemic therapies; returns them, in order.

    ``rows`` is the whole list after the save: each a dict of ``agent``, ``agent_other``,
    ``setting``, ``start_date``, ``end_date``, with ``id`` to change an existing row; an existing
    row left out is deleted. A new row needs no reason; a changed or deleted one does, and so does
    any change to a signed assessment, whose signature it voids (the signature covers the rows).
    All or nothing: a bad row saves no row.
    """
    subject = assessment.subject
    subject_services.require_crf_entry(subject, user)
    with transaction.atomic():
        assessment = EligibilityAssessment.objects.select_for_update().get(pk=assessment.pk)
        assessment.subject = subject
        before = data_hash(assessment)
        _replace_prior_therapies(assessment, rows, user=user, reason=reason)
        _refuse_no_with_rows(assessment)
        _void_if_changed(assessment, before, user=user, reason=reason)
    return assessment.prior_therapy_list()


def _replace_prior_therapies(assessment, rows, *, user, reason) -> None:
    existing = {row.pk: row for row in assessment.prior_therapies.select_for_update()}
    listed = set()
    for number, row_data in enumerate(rows, start=1):
        row_data = dict(row_data)
        pk = row_data.pop("id", None)
        unknown = set(row_data) - set(PriorTherapy.SIGNED_FIELDS)
        if unknown:
            raise DomainError(f"These are not prior therapy fields: {', '.join(sorted(unknown))}.")
        if pk is None:
            row = PriorTherapy(assessment=assessment)
        elif pk in existing and pk not in listed:
            row = existing[pk]
            listed.add(pk)
        else:
            raise DomainError(
                f"Prior therapy row {number} names a row that is not one of this assessment's "
                "(or twice): reload the page."
            )
        _save_row(row, row_data, number, user=user, reason=reason)
    for pk, row in existing.items():
        if pk not in listed:
            audited_delete(row, user=user, reason=reason)
    assessment.forget_prior_therapies()


def _save_row(row: PriorTherapy, row_data: dict, number: int, *, user, reason: str) -> None:
    """Set and save one row if it is new or changed; a bad value is refused naming the row."""
    before = {name: getattr(row, name) for name in row.SIGNED_FIELDS}
    for name, value in row_data.items():
        text = name in ("agent", "agent_other", "setting")
        setattr(row, name, "" if value is None and text else value)
    try:
        row.full_clean(exclude=["assessment"])
    except ValidationError as exc:
        raise ValidationError(
            {
                "prior_therapies": [
                    f"Prior therapy {number}: {_field_label(field)}: {message}"
                    for field, messages in exc.message_dict.items()
                    for message in messages
                ]
            }
        ) from exc
    if row.pk is None or before != {name: getattr(row, name) for name in row.SIGNED_FIELDS}:
        audited_save(row, user=user, reason=reason, validate_only=row.SIGNED_FIELDS)


def _field_label(name: str) -> str:
    if name == "__all__":
        return "row"
    return str(PriorTherapy._meta.get_field(name).verbose_name)


def _refuse_no_with_rows(assessment: EligibilityAssessment) -> None:
    """A "no" to prior systemic therapy with therapies listed is an entry error."""
    if assessment.prior_systemic_therapy is not False:
        return
    rows = assessment.prior_therapy_list()
    if rows:
        listed = "; ".join(row.describe() for row in rows)
        raise ValidationError(
            {
                "prior_systemic_therapy": (
                    f"The answer is no, but {len(rows)} prior systemic therapy row(s) are listed "
                    f"({listed}): answer yes, or remove the rows."
                )
            }
        )


def _void_if_changed(assessment, before: str, *, user, reason: str) -> None:
    """Void the active signatures when the signed data changed (``before``: their hash)."""
    if data_hash(assessment) == before:
        return  # nothing changed: no history row, the signature stands
    for signature in assessment.signatures.filter(void=False):
        if not reason.strip():  # a new prior therapy row needs no reason of its own
            raise ReasonRequired(
                "A reason for change is required: the change voids the investigator's signature."
            )
        void_signature(signature, user=user, reason=f"The assessment was changed: {reason.strip()}")


def void_signature(signature: EligibilitySignature, *, user, reason: str) -> EligibilitySignature:
    """Mark a signature void (kept, with the reason, in its history)."""
    signature.void = True
    signature.voided_at = timezone.now()
    signature.void_reason = reason
    return audited_save(signature, user=user, reason=reason)


def void_signatures_if_subject_data_changed(subject: Subject, *, user, reason: str) -> None:
    """Called by ``subjects.services`` (``on_subject_data_change``), in the transaction that
    changed the subject: a signature covering the subject's age, sex, date of birth or consent
    no longer matches, and is voided with that change's reason."""
    signatures = EligibilitySignature.objects.select_for_update().filter(
        assessment__subject=subject, void=False
    )
    for signature in signatures.select_related("assessment"):
        assessment = signature.assessment
        assessment.subject = subject  # the changed subject, as it is about to be saved
        if not hash_matches(signature, assessment):
            void_signature(
                signature,
                user=user,
                reason=f"The subject's data were changed: {reason.strip()}",
            )


# --- signatures ----------------------------------------------------------------------------------


def _authenticate_investigator(assessment, user, password: str) -> None:
    authenticate_signer(assessment.subject, user, password)


def authenticate_signer(subject: Subject, user, password: str) -> None:
    """The signer of an e-signature on ``subject``'s data (this app's, and the casebook's in
    ``monitoring``) must be an investigator at its site and re-enter the password; a wrong
    password is logged in the security log."""
    access.require_investigator(user, subject)
    # Brute-force protection: wrong passwords here and at the logins lock the account together.
    if not lockout.check_password(
        user,
        password,
        attempt="e-signature",
        failure=AuthEvent.Kind.SIGNATURE_REFUSED,
        subject=subject.subject_identifier,
    ):
        raise SignatureRefused("The password is not correct: the signature was not recorded.")


def _sign(assessment, *, user, kind, meaning, evaluation) -> EligibilitySignature:
    signature = EligibilitySignature(
        assessment=assessment,
        kind=kind,
        signer=user,
        signer_name=user.get_full_name() or user.get_username(),
        signed_at=timezone.now(),
        meaning=meaning,
        reference_date=evaluation.reference_date or today_at(assessment.subject.site),
        result_summary=evaluation.summary(),
        data_hash=data_hash(assessment),
        data_version=SIGNED_DATA_VERSION,
    )
    return audited_save(signature, user=user, reason=meaning)


def sign_off_refusal(
    assessment: EligibilityAssessment, evaluation: Evaluation, kind: SignatureKind
) -> str | None:
    """Why the investigator may not sign ``kind`` now, or ``None``: the one statement of the
    sign-off preconditions (the services enforce it under the lock; pages offer only the sign-offs
    it allows)."""
    subject = assessment.subject
    # In screening, either sign-off. After randomization the investigator signs eligible again
    # when a correction voided the signature (a data query asks for it); a screen failure is
    # final.
    randomized = subject.status not in (SubjectStatus.SCREENING, SubjectStatus.SCREEN_FAILED)
    if subject.status != SubjectStatus.SCREENING and not (
        randomized and kind == SignatureKind.ELIGIBLE
    ):
        return f"{subject} is {subject.get_status_display().lower()}: " + (
            "a screen failure is confirmed during screening only."
            if kind == SignatureKind.SCREEN_FAILURE
            else "its eligibility is not signed any more."
        )
    if kind == SignatureKind.ELIGIBLE:
        if active_signature(assessment) is not None:
            return "The assessment is already signed; any change voids it."
        if not evaluation.is_eligible:
            return (
                "Only a complete, eligible assessment can be signed as eligible. "
                + evaluation.summary()
            )
    elif evaluation.status != Status.NOT_ELIGIBLE:
        return (
            "Only a not-eligible assessment can be confirmed as a screen failure. "
            + evaluation.summary()
        )
    return None


def _lock_for_sign_off(assessment, kind) -> tuple[EligibilityAssessment, Evaluation]:
    """The assessment locked, evaluated, and checked against ``sign_off_refusal``."""
    assessment = (
        EligibilityAssessment.objects.select_for_update()
        .select_related("subject__site")
        .get(pk=assessment.pk)
    )
    evaluation = evaluate_eligibility(assessment)
    refusal = sign_off_refusal(assessment, evaluation, kind)
    if refusal:
        raise SignatureRefused(refusal)
    return assessment, evaluation


def sign_eligibility(
    assessment: EligibilityAssessment, *, user, password: str
) -> EligibilitySignature:
    """The investigator signs a complete, eligible assessment: "meets all eligibility criteria"."""
    _authenticate_investigator(assessment, user, password)
    with transaction.atomic():
        assessment, evaluation = _lock_for_sign_off(assessment, SignatureKind.ELIGIBLE)
        return _sign(
            assessment,
            user=user,
            kind=SignatureKind.ELIGIBLE,
            meaning=ELIGIBLE_MEANING,
            evaluation=evaluation,
        )


def confirm_screen_failure(
    assessment: EligibilityAssessment,
    *,
    user,
    password: str,
    on_date: date | None = None,
) -> EligibilitySignature:
    """The investigator confirms a not-eligible result: signed, and the subject is screen failed
    (on ``on_date``; by default today at the subject's site)."""
    _authenticate_investigator(assessment, user, password)
    on_date = on_date or today_at(assessment.subject.site)
    with transaction.atomic():
        assessment, evaluation = _lock_for_sign_off(assessment, SignatureKind.SCREEN_FAILURE)
        failed = "; ".join(f"{r.code}: {r.reason}" for r in evaluation.failed)
        signature = _sign(
            assessment,
            user=user,
            kind=SignatureKind.SCREEN_FAILURE,
            meaning=f"{SCREEN_FAILURE_MEANING} Failed: {failed}",
            evaluation=evaluation,
        )
        subject_services.change_status(
            assessment.subject,
            SubjectStatus.SCREEN_FAILED,
            user=user,
            reason="Screen failure confirmed by the investigator: fails "
            + ", ".join(r.code for r in evaluation.failed),
            on_date=on_date,
        )
    return signature


# --- for randomization ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StratificationFactors:
    macrovascular_or_extrahepatic: bool
    ecog: int  # one of the protocol's ``ecog_accepted`` (0 or 1)
    prior_locoregional_therapy: bool


def stratification_factors(
    subject: Subject, *, assessment: EligibilityAssessment | None = None
) -> StratificationFactors:
    """The three stratification factors, from the eligibility CRF.

    Both macrovascular invasion and extrahepatic spread must be answered (the factor is "either
    present"); ECOG must be one the protocol accepts (IN07, ``ecog_accepted``: the strata are
    ECOG 0 and 1). Pass the subject's ``assessment`` when it is already loaded.
    """
    assessment = assessment or get_assessment(subject)
    if assessment is None:
        raise StratificationIncomplete(
            f"{subject} has no eligibility assessment: the stratification factors come from it."
        )
    absent = [
        str(EligibilityAssessment._meta.get_field(f).verbose_name).lower()
        for f in STRATIFICATION_FIELDS
        if getattr(assessment, f) is None
    ]
    if absent:
        raise StratificationIncomplete(
            f"Stratification data missing for {subject}: {', '.join(absent)}."
        )
    accepted = elig_settings.protocol()["ecog_accepted"]
    if assessment.ecog not in accepted:
        raise StratificationIncomplete(
            f"{subject} has ECOG {assessment.ecog}: only ECOG "
            f"{' or '.join(map(str, accepted))} can be stratified (and randomized)."
        )
    return StratificationFactors(
        macrovascular_or_extrahepatic=bool(
            assessment.macrovascular_invasion or assessment.extrahepatic_spread
        ),
        ecog=assessment.ecog,
        prior_locoregional_therapy=bool(assessment.prior_locoregional_therapy),
    )


def factors_may_differ(assessment: str, stored: dict[str, str]) -> Q:
    """Rows whose stored factors (``stored``: factor -> its column) may differ from what
    ``stratification_factors`` gives from the assessment at lookup ``assessment``, or for which
    it refuses: a superset of the mismatches, so that the database picks the few rows the
    Python comparison then reads."""
    field = {name: F(f"{assessment}__{name}") for name in STRATIFICATION_FIELDS}
    either = Q(**{f"{assessment}__macrovascular_invasion": True}) | Q(
        **{f"{assessment}__extrahepatic_spread": True}
    )
    refused = Q(**{f"{assessment}__isnull": True}) | ~Q(
        **{f"{assessment}__ecog__in": elig_settings.protocol()["ecog_accepted"]}
    )
    for name in STRATIFICATION_FIELDS:
        refused |= Q(**{f"{assessment}__{name}__isnull": True})
    macrovascular = stored["macrovascular_or_extrahepatic"]
    return (
        refused
        | (Q(**{macrovascular: True}) & ~either)
        | (Q(**{macrovascular: False}) & either)
        | ~Q(**{stored["ecog"]: field["ecog"]})
        | ~Q(**{stored["prior_locoregional_therapy"]: field["prior_locoregional_therapy"]})
    )


def _signed_assessment(subject: Subject) -> tuple[EligibilityAssessment, EligibilitySignature]:
    """The subject's assessment and its active signature, read in one query; refuses when there
    is no assessment or no valid eligible signature (with why)."""
    signature = (
        EligibilitySignature.objects.filter(assessment__subject=subject, void=False)
        .select_related("assessment")
        .annotate(
            has_prior_therapies=Exists(
                PriorTherapy.objects.filter(assessment_id=OuterRef("assessment_id"))
            )
        )
        .order_by("-signed_at", "-pk")
        .first()
    )
    if signature is not None and signature.kind == SignatureKind.ELIGIBLE:
        assessment = signature.assessment
        assessment.subject = subject  # the caller's (locked) subject: no query, its current data
        if not signature.has_prior_therapies:
            assessment.use_prior_therapies(())  # known in the same query: none to read
        return assessment, signature
    assessment = get_assessment(subject)
    if assessment is None:
        raise NotRandomizable(f"{subject} has no eligibility assessment.")
    voided = assessment.signatures.filter(void=True).exists()
    raise NotRandomizable(
        f"The eligibility of {subject} is not signed off by an investigator"
        + (" (the last signature was voided by a change)." if voided else ".")
    )


def randomization_factors(subject: Subject, on_date: date) -> StratificationFactors:
    """The stratification factors of ``subject`` if it may be randomized on ``on_date``; else
    ``NotRandomizable`` with a sentence. Every rule of eligibility about randomizing, in one check:

    consented, in screening, with an assessment signed eligible whose signature is not void and
    still matches the data (nothing, not even the subject's demographics or consent, changed
    since), that evaluates eligible with its windows counted back from ``on_date``, and whose
    stratification factors are complete.
    """
    if on_date is None:
        raise NotRandomizable("Give the randomization date.")
    try:
        subject_services.ensure_consented(subject)
    except subject_services.ConsentRequired as exc:
        raise NotRandomizable(exc.message) from exc
    if subject.status != SubjectStatus.SCREENING:
        raise NotRandomizable(
            f"{subject} is {subject.get_status_display().lower()}: only a subject in screening "
            "can be randomized."
        )
    assessment, signature = _signed_assessment(subject)
    if not hash_matches(signature, assessment):
        raise NotRandomizable(
            f"The data of {subject} changed after the investigator signed eligibility: "
            "the signature no longer matches; the investigator must sign again."
        )
    evaluation = evaluate_eligibility(assessment, on_date=on_date)
    if not evaluation.is_eligible:
        details = "; ".join(f"{r.code}: {r.reason}" for r in evaluation.failed + evaluation.missing)
        raise NotRandomizable(
            f"{subject} is not eligible on {on_date:%Y-%m-%d}: {details or evaluation.summary()}"
        )
    try:
        return stratification_factors(subject, assessment=assessment)
    except StratificationIncomplete as exc:
        raise NotRandomizable(str(exc)) from exc
