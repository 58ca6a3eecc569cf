"""Demo sites, users of every role, and screened subjects at several stages.

Both paths decide here each subject's storyline up front (``ctx.plan``: subject id -> a dict the
seeders above read and add to). The default demo (``DEFAULT_STAGES``) screens its subjects over
the last 15 months: most are randomized on a day in the past (``randomized_on``), two on the day
of seeding, one signed eligible waits to be randomized, a few await consent or have their CRF in
progress (one of them for weeks: SUBJ-005) and a few are screen failures. The bulk path (a large
demo) also decides how each subject left the study.
"""

from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Count

from accounts.services import sync_admin_access
from core.audit import audited_save
from core.demo import DEMO_TIME_ZONE, bulk_insert, check_rules, chunks
from core.roles import SITE_ROLES, STUDY_WIDE_ROLES, Role

from . import services
from .models import Sex, Site, SiteMembership, Subject, SubjectStatus

# (code, name, country, time zone): China keeps one zone, China Standard Time (CST, UTC+8).
DEMO_SITES = [
    ("101", "Sun Yat-sen University Cancer Center", "China", DEMO_TIME_ZONE),
    ("102", "Zhongshan Hospital, Fudan University", "China", DEMO_TIME_ZONE),
    ("103", "West China Hospital, Sichuan University", "China", DEMO_TIME_ZONE),
]


def seed(ctx):
    _sites_and_users(ctx)
    if ctx.bulk:
        _seed_bulk(ctx)
    else:
        _register_subjects(ctx)
    ctx.write(
        f"{len(ctx.sites)} sites, {sum(len(u) for u in ctx.users.values())} users, "
        f"{len(ctx.subjects)} subjects registered "
        f"({sum(1 for s in ctx.subjects if s.status == SubjectStatus.SCREENING)} in screening)"
    )


def _sites_and_users(ctx):
    User = get_user_model()
    admin = User.objects.create_superuser(
        "admin", "admin@example.org", password := ctx.new_password()
    )
    ctx.admin = admin
    ctx.credentials.append(("admin", "superuser", "all", password))

    for code, name, country, zone in DEMO_SITES + _extra_sites(ctx.n_subjects, ctx.min_sites):
        site = Site(code=code, name=name, country=country, time_zone=zone)
        ctx.sites.append(audited_save(site, user=admin, reason=""))

    def make_user(username, first, last, role):
        pw = ctx.new_password()
        user = User.objects.create_user(
            username, f"{username}@example.org", pw, first_name=first, last_name=last
        )
        ctx.users.setdefault(role, []).append(user)
        return user, pw

    for site in ctx.sites:
        for role, first, last in [
            (Role.SITE_STAFF, "Coordinator", f"Site {site.code}"),
            (Role.INVESTIGATOR, "Investigator", f"Site {site.code}"),
        ]:
            user, pw = make_user(f"{role.replace('_', '')}{site.code}", first, last, role)
            services.save_membership(SiteMembership(user=user, site=site, role=role), user=admin)
            ctx.credentials.append((user.username, role, site.code, pw))
    monitor, pw = make_user("monitor", "Clinical", "Monitor", Role.MONITOR)
    for site in ctx.sites[:2]:
        services.save_membership(
            SiteMembership(user=monitor, site=site, role=Role.MONITOR), user=admin
        )
    ctx.credentials.append(("monitor", Role.MONITOR, "101, 102", pw))
    for role in sorted(STUDY_WIDE_ROLES):
        user, pw = make_user(role.replace("_", ""), Role(role).label, "Demo", role)
        user.groups.add(Group.objects.get(name=role))
        sync_admin_access(user)  # the admin: data managers and statisticians only
        ctx.credentials.append((user.username, role, "all", pw))
    assert SITE_ROLES  # every site role has a demo user above


def _extra_sites(n_subjects: int, min_sites: int = 0) -> list[tuple[str, str, str, str]]:
    """More sites when the demo sites' 9999 subject numbers each are not enough, or when more
    are asked for (``min_sites``)."""
    needed = max(-(-n_subjects // MAX_PER_SITE), min_sites)
    return [
        (str(104 + k), f"Demo Hospital {104 + k}", "China", DEMO_TIME_ZONE)
        for k in range(max(0, needed - len(DEMO_SITES)))
    ]


def _demographics(ctx, screened):
    age = ctx.rng.randint(35, 74)
    return {
        "sex": ctx.rng.choice([Sex.MALE, Sex.MALE, Sex.MALE, Sex.FEMALE]),
        "date_of_birth": screened - timedelta(days=365 * age + ctx.rng.randint(0, 300)),
        "initials": "".join(ctx.rng.choice("ABCDEFGHJKLMNPRSTWXYZ") for _ in range(2)),
    }


# The default demo's subjects, by their position (repeated beyond 24): where each one's screening
# leads (the stages below). Randomized subjects ("past") were randomized over the last 15 months,
# two ("today") are randomized on the day of seeding through the randomization service, and one
# signed-eligible subject waits for its "Randomize" button.
PAST = "past"
RANDOMIZED_TODAY = "randomized on the day of seeding"  # a stage, as those below
DEFAULT_STAGES = (
    [PAST, PAST, "today", PAST, "in progress", PAST, PAST, "consent", PAST, "waiting", PAST]
    + ["failed", PAST, PAST, PAST, "consent", PAST, "in progress", PAST, "failed", PAST, PAST]
    + ["today", PAST]
)
ENROLLED_FROM, ENROLLED_TO = 450, 30  # days before today: the past randomizations
SCREENING_TOO_LONG = 17  # this position: a CRF in progress for weeks (SUBJ-005 asks about it)


def _default_stages(n: int) -> list[str]:
    named = {
        PAST: RANDOMIZED,
        "today": RANDOMIZED_TODAY,
        "in progress": CRF_IN_PROGRESS,
        "consent": AWAITING_CONSENT,
        "waiting": AWAITING_RANDOMIZATION,
        "failed": SCREEN_FAILED,
    }
    stages = [named[DEFAULT_STAGES[i % len(DEFAULT_STAGES)]] for i in range(n)]
    if n >= 2 and AWAITING_RANDOMIZATION not in stages:
        stages[-1] = AWAITING_RANDOMIZATION  # a small demo keeps its "Randomize" button
    return stages


def _default_plan(ctx, i: int, stage: str, k: int, n_past: int) -> tuple[date, dict]:
    """(screening date, plan) of the ``i``-th subject; ``k``-th of the ``n_past`` randomized
    in the past (their randomizations spread evenly over ``ENROLLED_FROM``..``ENROLLED_TO`` days
    ago, the oldest first)."""
    rng, today = ctx.rng, ctx.today
    plan = {"stage": stage}
    if stage == RANDOMIZED:
        span = ENROLLED_FROM - ENROLLED_TO
        ago = ENROLLED_FROM - (span * k // max(1, n_past - 1)) + rng.randint(-6, 6)
        randomized_on = today - timedelta(days=min(ENROLLED_FROM, max(ENROLLED_TO, ago)))
        screened = randomized_on - timedelta(days=rng.randint(7, 20))
        plan["randomized_on"] = randomized_on
        plan["decided_on"] = randomized_on - timedelta(days=rng.randint(1, 3))
    elif stage == SCREEN_FAILED:
        screened = today - timedelta(days=rng.randint(40, 400))
        plan["decided_on"] = screened + timedelta(days=rng.randint(3, 14))
    elif stage == AWAITING_CONSENT:
        screened = today - timedelta(days=rng.randint(1, 10))
    elif stage == CRF_IN_PROGRESS and i % len(DEFAULT_STAGES) == SCREENING_TOO_LONG:
        screened = today - timedelta(days=rng.randint(35, 60))
    else:  # a CRF in progress, or randomized (or waiting to be) today
        screened = today - timedelta(days=rng.randint(5, 14))
    return screened, plan


def _register_subjects(ctx):
    """Through the services: each subject's stage decided by its position (``ctx.plan``, read
    by the seeders above), screened on a date that fits it; all but those awaiting consent
    consented on their screening day."""
    stages = _default_stages(ctx.n_subjects)
    n_past = stages.count(RANDOMIZED)
    k = 0
    for i, stage in enumerate(stages):
        site = ctx.sites[i % len(ctx.sites)]
        coordinator = ctx.site_user(Role.SITE_STAFF, site)
        screened, plan = _default_plan(ctx, i, stage, k, n_past)
        k += stage == RANDOMIZED
        subject = services.register_subject(
            site=site,
            user=coordinator,
            screening_number=f"SCR{site.code}-{i + 1:03d}",
            screening_date=screened,
            **_demographics(ctx, screened),
        )
        if stage != AWAITING_CONSENT:
            services.record_consent(
                subject, user=coordinator, consent_date=screened, consent_version=CONSENT_VERSION
            )
        ctx.subjects.append(subject)
        ctx.plan[subject.pk] = plan


# --- the bulk path: each subject's storyline decided up front, written once ----------------------

MAX_PER_SITE = 9999  # a site's subject numbers: <site>-0001 .. <site>-9999
ENROLMENT_DAYS = 3 * 365  # a large study screens over the last three years
CONSENT_VERSION = "2.0 (2020-08-15)"

# Where a subject's storyline ends (``ctx.plan[subject.pk]["stage"]``): the seeders above write
# its records accordingly (eligibility CRF, signatures, allocation, adverse events).
AWAITING_CONSENT = "awaiting consent"
CRF_IN_PROGRESS = "eligibility CRF in progress"
SCREEN_FAILED = "screen failed"
AWAITING_RANDOMIZATION = "signed eligible, awaiting randomization"
RANDOMIZED = "randomized"

# After randomization: how the subjects who left treatment left it (relative weights).
LEFT_TREATMENT = {
    SubjectStatus.TREATMENT_ENDED: 40,
    SubjectStatus.DIED: 20,
    SubjectStatus.WITHDRAWN: 10,
    SubjectStatus.COMPLETED: 30,
}


def _storyline(ctx, index: int, screened: date) -> tuple[dict, str, date | None]:
    """(plan, final status, its date) of one subject; the plan's dates are those the services
    would have recorded on the way (consent on the screening day)."""
    rng, today = ctx.rng, ctx.today
    since = (today - screened).days
    if index % 500 == 250:  # deliberate: still in screening long after consent (SUBJ-005)
        return {"stage": CRF_IN_PROGRESS}, SubjectStatus.SCREENING, None
    if since < 14 and rng.random() < 0.3:
        return {"stage": AWAITING_CONSENT}, SubjectStatus.SCREENING, None
    if since < 21:
        stage = CRF_IN_PROGRESS if rng.random() < 0.6 else AWAITING_RANDOMIZATION
        return {"stage": stage, "decided_on": today}, SubjectStatus.SCREENING, None
    if rng.random() < 0.12:
        failed_on = screened + timedelta(days=rng.randint(3, 14))
        plan = {"stage": SCREEN_FAILED, "decided_on": failed_on}
        return plan, SubjectStatus.SCREEN_FAILED, failed_on
    randomized_on = screened + timedelta(days=rng.randint(7, 20))
    plan = {
        "stage": RANDOMIZED,
        "decided_on": randomized_on - timedelta(days=rng.randint(0, 2)),
        "randomized_on": randomized_on,
    }
    follow_up = (today - randomized_on).days
    if follow_up > 30 and rng.random() < min(0.8, follow_up / 900):
        left_on = randomized_on + timedelta(days=rng.randint(21, follow_up))
        status = rng.choices(list(LEFT_TREATMENT), weights=list(LEFT_TREATMENT.values()))[0]
        if status == SubjectStatus.COMPLETED and (left_on - randomized_on).days < 180:
            status = SubjectStatus.TREATMENT_ENDED
        return plan, status, left_on
    return plan, SubjectStatus.RANDOMIZED, randomized_on


def _seed_bulk(ctx):
    """Every subject written once, in the state its storyline ends in, with one history record;
    identifiers numbered per site as ``register_subject`` numbers them."""
    sequences = dict.fromkeys((site.pk for site in ctx.sites), 0)
    indexes = list(range(ctx.n_subjects))
    for part in chunks(indexes):
        batch = []
        for i in part:
            site = ctx.sites[i % len(ctx.sites)]
            sequences[site.pk] += 1
            screened = ctx.today - timedelta(days=ctx.rng.randint(0, ENROLMENT_DAYS))
            plan, status, status_date = _storyline(ctx, i, screened)
            consented = plan["stage"] != AWAITING_CONSENT
            subject = Subject(
                site=site,
                sequence=sequences[site.pk],
                subject_identifier=f"{site.code}-{sequences[site.pk]:04d}",
                screening_number=f"SCR{site.code}-{i + 1:05d}",
                screening_date=screened,
                consent_date=screened if consented else None,
                consent_version=CONSENT_VERSION if consented else "",
                status=status,
                status_date=status_date,
                **_demographics(ctx, screened),
            )
            check_rules(subject)
            batch.append((subject, plan))
        bulk_insert(
            Subject,
            [subject for subject, _ in batch],
            user_of=lambda s: ctx.site_user(Role.SITE_STAFF, s.site),
        )
        for subject, plan in batch:
            ctx.subjects.append(subject)
            ctx.plan[subject.pk] = plan
        ctx.progress(f"Subjects: {len(ctx.subjects)}/{ctx.n_subjects}")


def seed_follow_up(ctx):
    """The subjects by status, after a bulk load. (The default demo's statuses after
    randomization follow its end-of-treatment and end-of-study forms: ``survival.demo`` counts
    them.)"""
    if not ctx.bulk:
        return
    ctx.write(status_counts())


def status_counts() -> str:
    counts = Subject.objects.values_list("status").annotate(n=Count("pk"))
    return "Subjects by status: " + ", ".join(
        f"{SubjectStatus(k).label} {n}" for k, n in sorted(counts)
    )
