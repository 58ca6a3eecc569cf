"""Demo adverse events: typical AEs of each arm for the randomized subjects, and one SAE.

Through ``services``, so the demo AEs have a real audit trail, within each subject's course;
``seed_follow_up`` adds a few events the edit checks will query. Events tied to dose changes,
the end of treatment or a death are recorded with their course (``treatment.demo``,
``survival.demo``). The starter dictionary is loaded when no CTCAE terms are (zero-setup demo).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.utils import timezone

from core.demo import bulk_insert, check_rules, chunks
from core.roles import Role
from core.site_time import zone_of
from randomization.arms import DRUGS_OF_ARM, Arm, StudyDrug
from randomization.demo import followed_until
from subjects.models import SubjectStatus

from . import selectors, services
from .models import (
    RELATED_CAUSALITIES,
    ActionTaken,
    AdverseEvent,
    AeCausality,
    AeOutcome,
    Causality,
    CtcaeTerm,
)
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
                BEV: _c(Causality.PROBABLE, ActionTaken.DOSE_NOT_CHANGED),
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
            {SORA: _c(Causality.DEFINITE, ActionTaken.DOSE_NOT_CHANGED)},
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
            {SORA: _c(Causality.POSSIBLE, ActionTaken.DOSE_NOT_CHANGED)},
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
    if ctx.bulk:
        _seed_bulk(ctx)
        return
    randomized = _randomized(ctx)
    if not randomized:
        ctx.write("No randomized subjects: no adverse events added.")
        return

    terms = {t.term: t for t in CtcaeTerm.objects.filter(term__in=_term_names())}
    today = ctx.today
    count = 0
    for index, (subject, arm) in enumerate(randomized):
        coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
        start = _randomized_on(ctx, subject)
        # (a subject randomized today in the evening, UTC, is randomized on the site's date)
        until = max(followed_until(ctx, subject), start)
        ends_study = until < today and not ctx.plan.get(subject.pk, {}).get("death_on")
        span = max((until - start).days, 0)
        choices = TYPICAL_AES[arm]
        for name, grade, ongoing, outcome, immune, treatment, causality in ctx.rng.sample(
            choices, k=min(len(choices), 1 + index % 3)
        ):
            onset = start + timedelta(days=ctx.rng.randint(0, span))
            end = None
            if ends_study:  # nothing left ongoing at the end of the study (AE-007)
                ongoing, outcome = False, AeOutcome.RECOVERED
            if not ongoing:
                end = min(onset + timedelta(days=ctx.rng.randint(3, 21)), until)
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

    # One SAE today: an upper GI bleed needing hospitalization, at the earliest-randomized
    # subject still on treatment (arm A preferred: a known bevacizumab risk), not yet reported.
    followed = [pair for pair in randomized if followed_until(ctx, pair[0]) == today]
    sae = _sae_of_the_day(ctx, followed, terms) if followed else None
    ctx.write(
        f"{count + (sae is not None)} adverse events for {len(randomized)} randomized subjects"
        + (
            f" (one SAE at {sae.subject}, site aware {sae.site_aware_at:%Y-%m-%d %H:%M} UTC, "
            "not yet reported)"
            if sae
            else ""
        )
    )


def _site_moment(subject, day, at: time) -> datetime:
    """``at`` o'clock on ``day`` at the subject's site (the site learns of an SAE in its day)."""
    return datetime.combine(day, at, tzinfo=zone_of(subject.site))


def _sae_of_the_day(ctx, followed, terms):
    subject, arm = min(
        followed,
        key=lambda pair: (
            not _on_treatment(ctx, pair[0]),
            pair[1] != Arm.A,
            _randomized_on(ctx, pair[0]),
        ),
    )
    onset = ctx.today
    aware = min(_site_moment(subject, onset, time(10, 30)), timezone.now())
    return services.record_adverse_event(
        subject,
        user=ctx.site_user(Role.SITE_STAFF, subject.site),
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


def seed_follow_up(ctx):
    """Later entries the edit checks will query, made as sites do make them: an immune-related
    event flagged in the sorafenib arm, a serious event reported to the sponsor late, the same
    event entered twice (the bulk path wrote its own share of such problems already)."""
    if ctx.bulk:
        return
    randomized = _randomized(ctx)
    if not randomized:
        return
    terms = {t.term: t for t in CtcaeTerm.objects.filter(term__in=_term_names())}
    done = []
    on_sorafenib = [s for s, arm in randomized if arm == Arm.B and _on_treatment(ctx, s)]
    if on_sorafenib:
        subject = on_sorafenib[0]
        services.record_adverse_event(
            subject,
            user=ctx.site_user(Role.SITE_STAFF, subject.site),
            term=terms["Rash maculo-papular"],
            grade=2,
            onset_date=ctx.today,
            ongoing=True,
            outcome=AeOutcome.RECOVERING,
            immune_related=True,
            treatment_given=True,
            treatment_details="Topical corticosteroid",
            causality={SORA: _c(Causality.PROBABLE, ActionTaken.DOSE_NOT_CHANGED)},
        )
        done.append(f"an immune-related rash at {subject} (sorafenib arm)")
    on_treatment = [pair for pair in randomized if _on_treatment(ctx, pair[0])]
    if len(on_treatment) >= 2:
        subject, arm = on_treatment[len(on_treatment) // 2]
        done.append(_late_sae(ctx, subject, arm, terms))
    done.append(_entered_twice(ctx, randomized[0][0]))
    ctx.write("Adverse events the edit checks will query: " + "; ".join(done))


def _entered_twice(ctx, subject) -> str:
    """The subject's first event entered a second time, by the investigator."""
    first = selectors.subject_events(subject).first()
    if first is None:
        return f"{subject} has no event to enter twice"
    services.record_adverse_event(
        subject,
        user=ctx.site_user(Role.INVESTIGATOR, subject.site),
        **{name: getattr(first, name) for name in services.AE_FIELDS},
        causality={
            row.drug: _c(row.causality, row.action_taken) for row in first.causalities.all()
        },
    )
    return f"AE {first.ae_number} of {subject} ({first.term}) entered twice"


def _late_sae(ctx, subject, arm, terms) -> str:
    """A variceal bleed during screening (before the first dose: not related), reported to the
    sponsor 40 hours after the site learned of it."""
    coordinator = ctx.site_user(Role.SITE_STAFF, subject.site)
    onset = max(subject.consent_date, _randomized_on(ctx, subject) - timedelta(days=4))
    aware = _site_moment(subject, onset, time(8, 15))
    ae = services.record_adverse_event(
        subject,
        user=coordinator,
        term=terms["Esophageal varices hemorrhage"],
        grade=3,
        onset_date=onset,
        end_date=min(onset + timedelta(days=3), ctx.today),
        outcome=AeOutcome.RECOVERED,
        serious=True,
        sc_hospitalization=True,
        site_aware_at=aware,
        treatment_given=True,
        treatment_details="Endoscopic band ligation",
        causality={
            drug: _c(Causality.NOT_RELATED, ActionTaken.NOT_APPLICABLE)
            for drug in DRUGS_OF_ARM[arm]
        },
    )
    services.mark_sae_reported(ae, user=coordinator, reported_at=aware + timedelta(hours=40))
    return f"an SAE at {subject} reported late"


def _randomized(ctx) -> list:
    """The demo's randomized subjects (read again: seeders before this one changed them), each
    with its arm."""
    randomized = []
    for subject in ctx.subjects:
        subject.refresh_from_db()
        arm = services.arm_of(subject)
        if arm is not None:
            randomized.append((subject, arm))
    return randomized


def _randomized_on(ctx, subject):
    """The subject's randomization date (its plan's; else its status date: a subject
    randomized in a test, without a plan)."""
    return ctx.plan.get(subject.pk, {}).get("randomized_on") or subject.status_date


def _on_treatment(ctx, subject) -> bool:
    """The subject's course (``randomization.demo``) keeps it on treatment up to today."""
    plan = ctx.plan.get(subject.pk, {})
    return not (plan.get("progression_from") or plan.get("stop") or plan.get("death_on"))


def _term_names() -> set[str]:
    names = {row[0] for rows in TYPICAL_AES.values() for row in rows}
    return names | {
        "Upper gastrointestinal hemorrhage",
        "Esophageal varices hemorrhage",
        "Rash maculo-papular",
    }


# --- the bulk path -------------------------------------------------------------------------------

BULK_AES_PER_SUBJECT = 20  # on average over all the demo's subjects (the randomized ones have more)
# The terms a large demo draws from: relative frequency in arm A and in arm B.
BULK_TERMS: dict[str, tuple[int, int]] = {
    "Hypertension": (30, 20),
    "Proteinuria": (20, 3),
    "Upper gastrointestinal hemorrhage": (3, 2),
    "Epistaxis": (8, 3),
    "Palmar-plantar erythrodysesthesia syndrome": (2, 35),
    "Diarrhea": (10, 30),
    "Alopecia": (1, 10),
    "Weight loss": (5, 12),
    "Hypothyroidism": (12, 3),
    "Hyperthyroidism": (5, 1),
    "Adrenal insufficiency": (2, 0),
    "Pneumonitis": (3, 0),
    "Colitis": (2, 0),
    "Rash maculo-papular": (12, 8),
    "Pruritus": (12, 5),
    "Infusion related reaction": (6, 0),
    "Aspartate aminotransferase increased": (20, 18),
    "Alanine aminotransferase increased": (18, 15),
    "Blood bilirubin increased": (10, 10),
    "Platelet count decreased": (10, 12),
    "Neutrophil count decreased": (4, 4),
    "Anemia": (8, 6),
    "Hypoalbuminemia": (8, 8),
    "Hepatic failure": (1, 1),
    "Ascites": (5, 5),
    "Fatigue": (25, 30),
    "Anorexia": (12, 20),
    "Nausea": (10, 12),
    "Abdominal pain": (10, 12),
    "Fever": (10, 5),
}
# Immune-related adverse events of the checkpoint inhibitor (arm A): flagged so half the time.
IRAE_TERMS = {
    "Hypothyroidism",
    "Hyperthyroidism",
    "Adrenal insufficiency",
    "Pneumonitis",
    "Colitis",
    "Rash maculo-papular",
    "Pruritus",
    "Aspartate aminotransferase increased",
    "Alanine aminotransferase increased",
}
FATAL_TERM = "Death NOS"
GRADE_WEIGHTS = {1: 50, 2: 33, 3: 14, 4: 3}
CAUSALITY_WEIGHTS = {
    Causality.NOT_RELATED: 25,
    Causality.UNLIKELY: 25,
    Causality.POSSIBLE: 25,
    Causality.PROBABLE: 17,
    Causality.DEFINITE: 8,
}
ENDED_STUDY = (SubjectStatus.WITHDRAWN, SubjectStatus.COMPLETED)
SAE_LATE_SHARE = 0.04  # serious events reported to the sponsor after the 24 hours


def _seed_bulk(ctx):
    """About ``BULK_AES_PER_SUBJECT`` events per subject for the randomized subjects, between
    randomization and the end of their follow-up (their death, the end of their study, or
    today), numbered 1, 2, 3… per subject in the order of onset, each with the causality of every
    drug of the arm; a fatal event for most subjects who died. Deliberate problems for the edit
    checks, at a few subjects each: an event entered twice, an immune-related event flagged in the
    sorafenib arm, an event still ongoing at the end of the study, a death without a fatal event,
    and (by chance, as in life) some serious events reported late."""
    names = [*BULK_TERMS, FATAL_TERM]
    terms = {t.term: t for t in CtcaeTerm.objects.filter(term__in=names)}
    pool = {
        arm: (
            [terms[name] for name in BULK_TERMS if name in terms],
            [weights[i] for name, weights in BULK_TERMS.items() if name in terms],
        )
        for i, arm in enumerate((Arm.A, Arm.B))
    }
    randomized = [s for s in ctx.subjects if "arm" in ctx.plan[s.pk]]
    mean = BULK_AES_PER_SUBJECT * ctx.n_subjects / max(1, len(randomized))
    total = serious = done = 0

    def coordinator(subject):
        return ctx.site_user(Role.SITE_STAFF, subject.site)

    for part in chunks(randomized):
        events, causalities = [], []
        for subject in part:
            for ae, rows in _subject_events(ctx, subject, done, pool, terms.get(FATAL_TERM), mean):
                check_rules(ae)
                events.append(ae)
                causalities += rows
            done += 1
        for row in causalities:
            check_rules(row)  # derives ``related``
        bulk_insert(AdverseEvent, events, user_of=lambda ae: coordinator(ae.subject))
        bulk_insert(
            AeCausality, causalities, user_of=lambda row: coordinator(row.adverse_event.subject)
        )
        total += len(events)
        serious += sum(1 for ae in events if ae.serious)
        ctx.progress(f"Adverse events: {total} for {done}/{len(randomized)} randomized subjects")
    ctx.write(
        f"{total} adverse events ({serious} serious) for {len(randomized)} randomized subjects"
    )


def _subject_events(ctx, subject, index, pool, fatal_term, mean) -> list:
    """(event, its causality rows) of one subject, numbered in the order of onset."""
    rng, plan = ctx.rng, ctx.plan[subject.pk]
    arm = plan["arm"]
    start, last = plan["randomized_on"], _observed_until(ctx, subject)
    span = (last - start).days
    count = min(rng.randint(max(1, round(mean / 2)), max(1, round(mean * 1.5))), 20 * (span + 1))
    drawn = set()
    while len(drawn) < count:
        term = rng.choices(*pool[arm])[0]
        drawn.add((start + timedelta(days=rng.randint(0, span)), term.term, term))
    events = [_event(ctx, subject, arm, term, onset) for onset, _, term in sorted(drawn)]
    if subject.status == SubjectStatus.DIED and fatal_term and index % 50 != 25:
        events.append(_fatal_event(ctx, subject, arm, fatal_term))  # 1 in 50: no fatal event
    events.sort(key=lambda pair: pair[0].onset_date)
    _deliberate_bulk_problems(ctx, subject, arm, index, events)
    for number, (ae, _) in enumerate(events, start=1):
        ae.ae_number = number
    return events


def _observed_until(ctx, subject):
    """The last day an event of the subject can start: its death or end of study, or today."""
    if subject.status in (SubjectStatus.DIED, *ENDED_STUDY):
        return subject.status_date
    return ctx.today


def _deliberate_bulk_problems(ctx, subject, arm, index, events) -> None:
    first = events[0][0]
    if first.grade == 5:
        return
    if index % 300 == 150:  # the same event entered twice (AE-006)
        events.insert(1, _copy(events[0]))
    if arm == Arm.B and index % 400 == 200:  # immune-related in the sorafenib arm (AE-005)
        first.immune_related = True
    if subject.status in ENDED_STUDY and index % 40 == 0:  # ongoing after the study (AE-007)
        ae = events[-1][0]
        ae.end_date, ae.ongoing, ae.outcome = None, True, AeOutcome.NOT_RECOVERED


def _copy(pair):
    ae, rows = pair
    twin = AdverseEvent(
        **{
            f.attname: getattr(ae, f.attname)
            for f in AdverseEvent._meta.concrete_fields
            if f.attname not in ("id", "created", "updated")
        }
    )
    twin.subject, twin.term = ae.subject, ae.term
    return twin, [
        AeCausality(
            adverse_event=twin, drug=r.drug, causality=r.causality, action_taken=r.action_taken
        )
        for r in rows
    ]


def _event(ctx, subject, arm, term, onset):
    rng = ctx.rng
    grade = rng.choices(
        *zip(*[(g, w) for g, w in GRADE_WEIGHTS.items() if g in term.allowed_grades], strict=True)
    )[0]
    end, ongoing = onset + timedelta(days=rng.randint(2, 60)), False
    limit = subject.status_date if subject.status == SubjectStatus.DIED else ctx.today
    if end > limit or rng.random() < 0.08:
        if subject.status in ENDED_STUDY:
            end = min(end, ctx.today)
        else:
            end, ongoing = None, True
    treated = rng.random() < 0.35
    ae = AdverseEvent(
        subject=subject,
        term=term,
        grade=grade,
        onset_date=onset,
        end_date=end,
        ongoing=ongoing,
        outcome=rng.choice([AeOutcome.RECOVERING, AeOutcome.NOT_RECOVERED])
        if ongoing
        else (AeOutcome.RECOVERED if rng.random() < 0.9 else AeOutcome.RECOVERED_WITH_SEQUELAE),
        immune_related=arm == Arm.A and term.term in IRAE_TERMS and rng.random() < 0.5,
        treatment_given=treated,
        treatment_details="Symptomatic treatment as per site practice" if treated else "",
    )
    if grade >= 3 and onset <= ctx.today - timedelta(days=2) and (grade == 4 or rng.random() < 0.3):
        _make_serious(ctx, ae, "sc_life_threatening" if grade == 4 else "sc_hospitalization")
    return ae, _causality_rows(ctx, ae, arm)


def _make_serious(ctx, ae, criterion: str, aware_on=None) -> None:
    """Serious, with the time the site became aware and (mostly in time) the report time."""
    rng = ctx.rng
    ae.serious = True
    setattr(ae, criterion, True)
    aware_on = aware_on or min(
        ae.onset_date + timedelta(days=rng.randint(0, 1)), ctx.today - timedelta(days=1)
    )
    ae.site_aware_at = ctx.at(aware_on, rng.randint(8, 17), rng.randint(0, 59))
    hours = rng.randint(25, 72) if rng.random() < SAE_LATE_SHARE else rng.randint(1, 20)
    reported = ae.site_aware_at + timedelta(hours=hours, minutes=rng.randint(0, 59))
    if reported <= timezone.now():
        ae.sae_reported_at = reported


def _fatal_event(ctx, subject, arm, term):
    """The event that led to death: grade 5, fatal, serious ("results in death")."""
    death = subject.status_date
    onset = max(
        ctx.plan[subject.pk]["randomized_on"], death - timedelta(days=ctx.rng.randint(0, 10))
    )
    ae = AdverseEvent(
        subject=subject,
        term=term,
        grade=5,
        onset_date=onset,
        end_date=death,
        outcome=AeOutcome.FATAL,
        death_date=death,
    )
    _make_serious(ctx, ae, "sc_death", aware_on=death)
    rows = [
        AeCausality(
            adverse_event=ae,
            drug=drug,
            causality=ctx.rng.choice([Causality.NOT_RELATED, Causality.UNLIKELY]),
            action_taken=ActionTaken.NOT_APPLICABLE,
        )
        for drug in DRUGS_OF_ARM[arm]
    ]
    return ae, rows


def _causality_rows(ctx, ae, arm) -> list:
    rng = ctx.rng
    rows = []
    for drug in DRUGS_OF_ARM[arm]:
        causality = rng.choices(list(CAUSALITY_WEIGHTS), list(CAUSALITY_WEIGHTS.values()))[0]
        action = ActionTaken.DOSE_NOT_CHANGED
        if causality in RELATED_CAUSALITIES and ae.grade >= 3:
            action = rng.choice(
                [ActionTaken.DRUG_INTERRUPTED, ActionTaken.DOSE_REDUCED, ActionTaken.DRUG_WITHDRAWN]
            )
        rows.append(
            AeCausality(adverse_event=ae, drug=drug, causality=causality, action_taken=action)
        )
    return rows
