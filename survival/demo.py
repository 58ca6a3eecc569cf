"""Demo end of treatment, survival follow-up and end of study, per arm.

Runs after every app's ``seed`` and records, through the services, what each subject's course
says, keeping the date of death the same everywhere so the SURV and SUBJ edit checks have
nothing to ask. The endpoints report then shows two Kaplan-Meier curves per endpoint. The large
demo (``ctx.bulk``) skips these forms: no bulk path for dated follow-up yet.
"""

from __future__ import annotations

from datetime import timedelta

from core.roles import Role
from randomization.arms import DRUGS_OF_ARM, Arm
from subjects.demo import status_counts
from treatment.demo import course_of
from treatment.settings import schedule_settings

from . import services
from .models import DeathCause, EndOfStudyReason, EndOfTreatmentReason, VitalStatus

AGENTS = {Arm.A: "Lenvatinib 8 mg daily", Arm.B: "Regorafenib 160 mg daily (3 weeks on, 1 off)"}
END_REASONS = {
    "progression": EndOfTreatmentReason.PROGRESSION,
    "toxicity": EndOfTreatmentReason.TOXICITY,
    "withdrawal": EndOfTreatmentReason.WITHDRAWAL,
    "death": EndOfTreatmentReason.DEATH,
}


def seed_follow_up(ctx):
    if ctx.bulk:  # no bulk path for dated follow-up yet
        return
    counts = {"ended": 0, "contacts": 0, "died": 0, "withdrawn": 0}
    for subject in ctx.subjects:
        if "arm" not in ctx.plan[subject.pk]:
            continue
        course = course_of(ctx, subject)
        if course.end_reason is None:
            continue
        staff = ctx.site_user(Role.SITE_STAFF, subject.site)
        toxic = _toxicity(ctx, subject, course) if course.end_reason == "toxicity" else None
        services.record_end_of_treatment(
            subject,
            user=staff,
            last_dose_date=course.last_dose,
            end_reason=END_REASONS[course.end_reason],
            adverse_event=toxic,
        )
        counts["ended"] += 1
        counts["contacts"] += _follow_up(ctx, subject, staff, course)
        if course.death_on:
            _death(ctx, subject, staff, course)
            counts["died"] += 1
        elif course.withdrawn_on:
            services.record_end_of_study(
                subject,
                user=staff,
                end_date=course.withdrawn_on,
                end_reason=EndOfStudyReason.CONSENT_WITHDRAWN,
            )
            counts["withdrawn"] += 1
    ctx.write(
        f"Survival: {counts['ended']} ends of treatment, {counts['contacts']} follow-up contacts, "
        f"{counts['died']} deaths, {counts['withdrawn']} withdrawals. {status_counts()}"
    )


def _follow_up(ctx, subject, staff, course) -> int:
    """The safety follow-up contact 30 days after the last dose (the calendar's first safety
    visit), then contacts every 12 weeks after the end of treatment, up to today or the day
    before the death; the first contact after a progression names the next line of therapy."""
    visits = schedule_settings()
    interval = timedelta(weeks=visits.survival_interval_weeks)
    until = course.death_on - timedelta(days=1) if course.death_on else ctx.today
    if course.withdrawn_on:
        return 0
    contacts = 0
    days = [course.last_dose + timedelta(days=visits.safety_follow_up_days[0])]
    day = course.last_dose + interval
    while day <= until:
        days.append(day)
        day += interval
    for day in (d for d in days if d <= until):
        therapies = []
        if contacts == 0 and course.end_reason == "progression":
            start = min(day, course.last_dose + timedelta(days=ctx.rng.randint(14, 30)))
            therapies = [{"agent": AGENTS[course.arm], "start_date": start}]
        services.record_follow_up(
            subject,
            user=staff,
            contact_date=day,
            vital_status=VitalStatus.ALIVE,
            last_known_alive_date=day,
            therapies=therapies,
        )
        contacts += 1
    return contacts


def _toxicity(ctx, subject, course):
    """The adverse event that ended the treatment: an immune-related pneumonitis, grade 3."""
    from adverse_events.models import ActionTaken, AeOutcome, Causality

    onset = course.last_dose + timedelta(days=ctx.rng.randint(5, 12))
    onset = min(onset, ctx.today)
    causality = {
        drug: {"causality": Causality.PROBABLE, "action_taken": ActionTaken.DRUG_WITHDRAWN}
        for drug in DRUGS_OF_ARM[course.arm]
    }
    return _record_ae(
        ctx,
        subject,
        "Pneumonitis",
        grade=3,
        onset_date=onset,
        end_date=min(onset + timedelta(days=35), ctx.today),
        outcome=AeOutcome.RECOVERED_WITH_SEQUELAE,
        immune_related=course.arm == Arm.A,
        treatment_given=True,
        treatment_details="Prednisone 1 mg/kg/day, tapered over 6 weeks",
        causality=causality,
    )


def _death(ctx, subject, staff, course) -> None:
    """The fatal event (the subject dies on its date), then the end of study by death."""
    from adverse_events.models import ActionTaken, AeOutcome, Causality

    death = course.death_on
    progressed = course.progression_on is not None
    fatal = _record_ae(
        ctx,
        subject,
        "Death NOS" if progressed else "Hepatic failure",
        grade=5,
        onset_date=death - timedelta(days=0 if progressed else ctx.rng.randint(3, 8)),
        end_date=death,
        outcome=AeOutcome.FATAL,
        death_date=death,
        serious=True,
        sc_death=True,
        site_aware_at=ctx.at(death, ctx.rng.randint(1, 6), ctx.rng.randint(0, 59)),
        causality={
            drug: {
                "causality": Causality.NOT_RELATED if progressed else Causality.UNLIKELY,
                "action_taken": ActionTaken.NOT_APPLICABLE,
            }
            for drug in DRUGS_OF_ARM[course.arm]
        },
        reported_hours=ctx.rng.randint(2, 20),
    )
    services.record_end_of_study(
        subject,
        user=staff,
        end_date=death,
        end_reason=EndOfStudyReason.DEATH,
        death_date=death,
        death_cause=DeathCause.PROGRESSION if progressed else DeathCause.ADVERSE_EVENT,
        death_adverse_event=None if progressed else fatal,
    )


def _record_ae(ctx, subject, term, *, reported_hours=None, **data):
    from adverse_events import services as ae_services
    from adverse_events.models import CtcaeTerm

    user = ctx.site_user(Role.SITE_STAFF, subject.site)
    ae = ae_services.record_adverse_event(
        subject, user=user, term=CtcaeTerm.objects.get(term=term), **data
    )
    if reported_hours is not None:
        ae_services.mark_sae_reported(
            ae, user=user, reported_at=ae.site_aware_at + timedelta(hours=reported_hours)
        )
    return ae
