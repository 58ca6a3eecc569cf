"""Demo adverse events: typical AEs of each arm for the randomized subjects, and one SAE.

Loads the hand-written starter dictionary first if no CTCAE terms are loaded (zero-setup demo).
Runs after ``randomization.demo``: only randomized subjects take study drugs and get AEs here.
Everything goes through ``services``, so the demo AEs have a real audit trail.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from core.roles import Role
from randomization.arms import Arm, StudyDrug

from . import services
from .models import ActionTaken, AeOutcome, Causality, CtcaeTerm
from .starter_terms import load_starter_terms

TORI, BEV, SORA = StudyDrug.TORIPALIMAB, StudyDrug.BEVACIZUMAB, StudyDrug.SORAFENIB


def _c(causality, action):
    return {"causality": causality, "action_taken": action}


# (term, grade, ongoing?, outcome, immune-related, treatment, causality per drug)
TYPICAL_AES = {
    Arm.A: [
        (
            "Hypertension",
            2,
            True,
            AeOutcome.NOT_RECOVERED,
            False,
            "Amlodipine 5 mg daily",
            {
                TORI: _c(Causality.UNLIKELY, ActionTaken.DOSE_NOT_CHANGED),
                BEV: _c(Causality.PROBABLE, ActionTaken.DOSE_NOT_CHANGED),
            },
        ),
        (
            "Proteinuria",
            2,
            False,
            AeOutcome.RECOVERED,
            False,
            "",
            {
                TORI: _c(Causality.UNLIKELY, ActionTaken.DOSE_NOT_CHANGED),
                BEV: _c(Causality.PROBABLE, ActionTaken.DRUG_INTERRUPTED),
            },
        ),
        (
            "Hypothyroidism",
            2,
            True,
            AeOutcome.NOT_RECOVERED,
            True,
            "Levothyroxine 50 micrograms daily",
            {
                TORI: _c(Causality.PROBABLE, ActionTaken.DOSE_NOT_CHANGED),
                BEV: _c(Causality.NOT_RELATED, ActionTaken.DOSE_NOT_CHANGED),
            },
        ),
        (
            "Aspartate aminotransferase increased",
            1,
            False,
            AeOutcome.RECOVERED,
            True,
            "",
            {
                TORI: _c(Causality.POSSIBLE, ActionTaken.DOSE_NOT_CHANGED),
                BEV: _c(Causality.UNLIKELY, ActionTaken.DOSE_NOT_CHANGED),
            },
        ),
    ],
    Arm.B: [
        (
            "Palmar-plantar erythrodysesthesia syndrome",
            2,
            True,
            AeOutcome.RECOVERING,
            False,
            "Urea 10% cream twice daily",
            {SORA: _c(Causality.DEFINITE, ActionTaken.DOSE_REDUCED)},
        ),
        (
            "Diarrhea",
            1,
            False,
            AeOutcome.RECOVERED,
            False,
            "Loperamide",
            {SORA: _c(Causality.PROBABLE, ActionTaken.DOSE_NOT_CHANGED)},
        ),
        (
            "Hypertension",
            1,
            True,
            AeOutcome.NOT_RECOVERED,
            False,
            "",
            {SORA: _c(Causality.POSSIBLE, ActionTaken.DOSE_NOT_CHANGED)},
        ),
        (
            "Aspartate aminotransferase increased",
            2,
            False,
            AeOutcome.RECOVERED,
            False,
            "",
            {SORA: _c(Causality.POSSIBLE, ActionTaken.DRUG_INTERRUPTED)},
        ),
    ],
}
SAE_CAUSALITY = {
    Arm.A: {
        TORI: _c(Causality.UNLIKELY, ActionTaken.DOSE_NOT_CHANGED),
        BEV: _c(Causality.PROBABLE, ActionTaken.DRUG_WITHDRAWN),
    },
    Arm.B: {SORA: _c(Causality.POSSIBLE, ActionTaken.DRUG_INTERRUPTED)},
}


def seed(ctx):
    added_terms = load_starter_terms(user=ctx.admin)
    if added_terms:
        ctx.write(
            f"CTCAE starter set: {added_terms} terms (load the full dictionary with "
            "manage.py load_ctcae PATH)"
        )
    randomized = []
    for subject in ctx.subjects:
        subject.refresh_from_db()
        arm = services.arm_of(subject)
        if arm is not None:
            randomized.append((subject, arm))
    if not randomized:
        ctx.write("No randomized subjects: no adverse events added.")
        return

    terms = {t.term: t for t in CtcaeTerm.objects.filter(term__in=_term_names())}
    today = ctx.today
    count = 0
    for index, (subject, arm) in enumerate(randomized):
        coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
        start = subject.status_date or subject.consent_date
        span = max((today - start).days, 0)
        choices = TYPICAL_AES[arm]
        for name, grade, ongoing, outcome, immune, treatment, causality in ctx.rng.sample(
            choices, k=min(len(choices), 1 + index % 3)
        ):
            onset = start + timedelta(days=ctx.rng.randint(0, span))
            end = None
            if not ongoing:
                end = min(onset + timedelta(days=ctx.rng.randint(3, 21)), today)
            services.record_adverse_event(
                subject,
                user=coordinator,
                term=terms[name],
                grade=grade,
                onset_date=onset,
                end_date=end,
                ongoing=ongoing,
                outcome=outcome,
                immune_related=immune,
                treatment_given=bool(treatment),
                treatment_details=treatment,
                causality=causality,
            )
            count += 1

    # One SAE: an upper GI bleed needing hospitalization, at the earliest-randomized subject
    # (arm A preferred: a known bevacizumab risk), not yet reported to the sponsor.
    subject, arm = min(randomized, key=lambda pair: (pair[1] != Arm.A, pair[0].status_date))
    coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
    onset = max(subject.status_date or subject.consent_date, today - timedelta(days=2))
    now = timezone.now()
    aware = min(timezone.make_aware(datetime.combine(onset, time(10, 30))), now)
    services.record_adverse_event(
        subject,
        user=coordinator,
        term=terms["Upper gastrointestinal hemorrhage"],
        grade=3,
        onset_date=onset,
        ongoing=True,
        outcome=AeOutcome.RECOVERING,
        serious=True,
        sc_hospitalization=True,
        site_aware_at=aware,
        treatment_given=True,
        treatment_details="Endoscopic band ligation; transfusion of 2 units packed red cells",
        causality=SAE_CAUSALITY[arm],
    )
    ctx.write(
        f"{count + 1} adverse events for {len(randomized)} randomized subjects "
        f"(one SAE at {subject}, site aware {aware:%Y-%m-%d %H:%M} UTC, not yet reported)"
    )


def _term_names() -> set[str]:
    names = {row[0] for rows in TYPICAL_AES.values() for row in rows}
    return names | {"Upper gastrointestinal hemorrhage"}
