"""Demo sites, users of every role, and screened subjects at several stages."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.audit import audited_save
from core.roles import SITE_ROLES, STUDY_WIDE_ROLES, Role

from . import services
from .models import Sex, Site, SiteMembership, SubjectStatus

DEMO_SITES = [
    ("101", "Sun Yat-sen University Cancer Center", "China"),
    ("102", "Zhongshan Hospital, Fudan University", "China"),
    ("103", "West China Hospital, Sichuan University", "China"),
]


def seed(ctx):
    User = get_user_model()
    admin = User.objects.create_superuser(
        "admin", "admin@example.org", password := ctx.new_password()
    )
    ctx.admin = admin
    ctx.credentials.append(("admin", "superuser", "all", password))

    for code, name, country in DEMO_SITES:
        ctx.sites.append(
            audited_save(Site(code=code, name=name, country=country), user=admin, reason="")
        )

    def make_user(username, first, last, role):
        pw = ctx.new_password()
        user = User.objects.create_user(
            username, f"{username}@example.org", pw, first_name=first, last_name=last
        )
        user.is_staff = True  # the admin is open to every role, scoped by site
        user.save()
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
        ctx.credentials.append((user.username, role, "all", pw))
    assert SITE_ROLES  # every site role has a demo user above

    # Subjects: screened over the last months; most consented; some screen failures.
    for i in range(ctx.n_subjects):
        site = ctx.sites[i % len(ctx.sites)]
        coordinator = ctx.site_user(Role.SITE_STAFF, site)
        screened = ctx.today - timedelta(days=ctx.rng.randint(10, 150))
        age = ctx.rng.randint(35, 74)
        dob = screened - timedelta(days=365 * age + ctx.rng.randint(0, 300))
        subject = services.register_subject(
            site=site,
            user=coordinator,
            screening_number=f"SCR{site.code}-{i + 1:03d}",
            sex=ctx.rng.choice([Sex.MALE, Sex.MALE, Sex.MALE, Sex.FEMALE]),
            date_of_birth=dob,
            initials="".join(ctx.rng.choice("ABCDEFGHJKLMNPRSTWXYZ") for _ in range(2)),
            screening_date=screened,
        )
        if i % 8 != 7:  # one in eight still awaits consent
            services.record_consent(
                subject,
                user=coordinator,
                consent_date=screened,
                consent_version="2.0 (2020-08-15)",
            )
        ctx.subjects.append(subject)
    ctx.write(
        f"{len(ctx.sites)} sites, {sum(len(u) for u in ctx.users.values())} users, "
        f"{len(ctx.subjects)} subjects registered "
        f"({sum(1 for s in ctx.subjects if s.status == SubjectStatus.SCREENING)} in screening)"
    )


def seed_follow_up(ctx):
    """After randomization: one subject's treatment ended, one withdrew (the rest continue)."""
    randomized = [s for s in ctx.subjects if s.status == SubjectStatus.RANDOMIZED]
    moves = [
        (SubjectStatus.TREATMENT_ENDED, "Treatment discontinued: radiological progression"),
        (SubjectStatus.WITHDRAWN, "Subject withdrew consent for further participation"),
    ]
    for subject, (status, reason) in zip(randomized[-len(moves) :], moves, strict=False):
        services.change_status(
            subject,
            status,
            user=ctx.site_user(Role.SITE_STAFF, subject.site),
            reason=reason,
            on_date=ctx.today,
        )
    counts = {}
    for subject in ctx.subjects:
        subject.refresh_from_db()
        counts[subject.get_status_display()] = counts.get(subject.get_status_display(), 0) + 1
    ctx.write("Subjects by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
