"""Demo end of treatment, survival follow-up and end of study, per arm.

Runs after the subjects' ``seed_follow_up`` (which ends one subject's treatment and withdraws
another) and after the adverse events. The default demo randomizes its subjects today, so every
date here is today (the services refuse dates before randomization or in the future):

* the subject whose treatment ended gets its end-of-treatment form (progression), the withdrawn
  one its end of treatment and end of study (withdrawal of consent);
* in each arm, one subject still on treatment ends it for toxicity (linked to one of its AEs)
  or progression, is contacted in follow-up with a subsequent therapy, and in each arm another
  dies (end of treatment, then end of study by death from progression): the subject page, the
  exports and the statistician's endpoints report show them.

The large demo (``ctx.bulk``) skips these forms: its storylines would need dated follow-up
records written in bulk, not written yet (its subjects keep the statuses the storylines gave).
"""

from __future__ import annotations

from core.roles import Role
from randomization.arms import Arm
from subjects.models import SubjectStatus

from . import services
from .models import (
    DeathCause,
    EndOfStudy,
    EndOfStudyReason,
    EndOfTreatment,
    EndOfTreatmentReason,
    VitalStatus,
)

AGENTS = {Arm.A: "Lenvatinib 8 mg daily", Arm.B: "Regorafenib 160 mg daily (3 weeks on, 1 off)"}


def seed_follow_up(ctx):
    if ctx.bulk:  # see the module docstring
        return
    from adverse_events.models import AdverseEvent
    from randomization import selectors as randomization_selectors

    done = []
    today = ctx.today
    on_treatment = {Arm.A: [], Arm.B: []}
    for subject in ctx.subjects:
        subject.refresh_from_db()
        arm = randomization_selectors.arm_of(subject)
        if arm is None:
            continue
        staff = ctx.site_user(Role.SITE_STAFF, subject.site)
        has_eot = EndOfTreatment.objects.filter(subject=subject).exists()
        if subject.status == SubjectStatus.TREATMENT_ENDED and not has_eot:
            _end(subject, staff, today, EndOfTreatmentReason.PROGRESSION)
            done.append(f"{subject} end of treatment")
        elif subject.status == SubjectStatus.WITHDRAWN and not has_eot:
            _end(subject, staff, today, EndOfTreatmentReason.WITHDRAWAL)
            if not EndOfStudy.objects.filter(subject=subject).exists():
                services.record_end_of_study(
                    subject,
                    user=staff,
                    end_date=today,
                    end_reason=EndOfStudyReason.CONSENT_WITHDRAWN,
                )
            done.append(f"{subject} withdrawn (end of treatment and of study)")
        elif subject.status == SubjectStatus.RANDOMIZED:
            on_treatment[arm].append((subject, staff))
    for arm, pairs in on_treatment.items():
        if pairs:
            subject, staff = pairs[0]
            toxic = AdverseEvent.objects.filter(subject=subject).order_by("-grade").first()
            if toxic is not None:
                _end(subject, staff, today, EndOfTreatmentReason.TOXICITY, adverse_event=toxic)
            else:
                _end(subject, staff, today, EndOfTreatmentReason.PROGRESSION)
            services.record_follow_up(
                subject,
                user=staff,
                contact_date=today,
                vital_status=VitalStatus.ALIVE,
                last_known_alive_date=today,
                therapies=[{"agent": AGENTS[arm], "start_date": today}],
            )
            done.append(f"{subject} (arm {arm}) followed up on a subsequent therapy")
        if len(pairs) > 1:
            subject, staff = pairs[1]
            _end(subject, staff, today, EndOfTreatmentReason.PROGRESSION)
            services.record_end_of_study(
                subject,
                user=staff,
                end_date=today,
                end_reason=EndOfStudyReason.DEATH,
                death_date=today,
                death_cause=DeathCause.PROGRESSION,
            )
            done.append(f"{subject} (arm {arm}) died of progression")
    ctx.write("Survival: " + ("; ".join(done) if done else "nothing to record"))


def _end(subject, staff, today, reason, **extra):
    services.record_end_of_treatment(
        subject, user=staff, last_dose_date=today, end_reason=reason, **extra
    )
