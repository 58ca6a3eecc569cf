"""Reads of randomization: the active list, a subject's allocation and arm, its randomization
date, the allocations a user may see, stratification mismatches, and the balance report. Pages,
admin, API and the apps above read through these; the services write.

**The randomization date** is the site's clinical date of the allocation: the date of
``allocated_at`` (stored in UTC) in the time zone of the subject's site. A subject randomized in
Shanghai at 07:30 on 2 March (23:30 UTC on 1 March) is randomized on 2 March. The randomization
service dates the subject's status with it; the visit calendar, RECIST, PFS, OS and the SDTM
datasets count from it. It is defined here only: ``randomization_date_of(allocation)`` in
Python, ``RandomizationDate(path)`` in SQL (the same rule, for querysets and edit checks),
``randomization_date(subject)`` and ``randomization_dates(subject_ids)`` (one query).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from core import access
from core.errors import AccessDenied, DomainError
from core.site_time import SiteDate, date_at
from eligibility import services as eligibility
from subjects.models import Subject

from . import listgen
from .arms import Arm
from .models import Allocation, RandomizationList, Stratum, factor_labels

FACTOR_FIELDS = ("macrovascular_or_extrahepatic", "ecog", "prior_locoregional_therapy")
FACTOR_NAMES = {
    "macrovascular_or_extrahepatic": "Macrovascular invasion and/or extrahepatic spread",
    "ecog": "ECOG performance status",
    "prior_locoregional_therapy": "Prior locoregional therapy",
}


def low_slots_threshold() -> int:
    """Settings: RANDOMIZATION_LOW_SLOTS_WARNING (default 20 free slots left in a stratum)."""
    return settings.RANDOMIZATION_LOW_SLOTS_WARNING


def active_list() -> RandomizationList | None:
    return RandomizationList.objects.filter(active=True).first()


def visible_allocations(user) -> QuerySet:
    """The allocations of the user's sites (never a slot, a block or a seed)."""
    return access.scope_to_user(
        Allocation.objects.select_related("subject__site", "stratum", "allocated_by"), user
    )


def arm_of(subject: Subject) -> Arm | None:
    """The subject's arm, or None while not randomized."""
    arm = Allocation.objects.filter(subject_id=subject.pk).values_list("arm", flat=True).first()
    return Arm(arm) if arm else None


def allocation_of(subject: Subject) -> Allocation | None:
    return Allocation.objects.filter(subject_id=subject.pk).first()


# --- the randomization date ----------------------------------------------------------------------


def randomization_date_of(allocation: Allocation) -> date:
    """The randomization date of ``allocation``: the date of ``allocated_at`` at the subject's
    site (reads ``allocation.subject.site``: select it with the allocation)."""
    return date_at(allocation.allocated_at, allocation.subject.site)


class RandomizationDate(SiteDate):
    """SQL: the randomization date of the allocation at ``path`` ("" on ``Allocation`` itself,
    "allocation" from ``Subject``, "subject__allocation" from a CRF), the same rule as
    ``randomization_date_of``: the date of ``allocated_at`` at the subject's site
    (``core.site_time.SiteDate``), computed per row by the database."""

    def __init__(self, path: str = "allocation"):
        prefix = f"{path}__" if path else ""
        super().__init__(f"{prefix}allocated_at", f"{prefix}subject__site")


def randomization_dates(subject_ids: Iterable[int] | QuerySet) -> dict[int, date]:
    """{subject id: randomization date} of the randomized subjects among ``subject_ids`` (one
    query; a queryset of ids is used as a subquery)."""
    ids = subject_ids if isinstance(subject_ids, QuerySet) else list(subject_ids)
    rows = (
        Allocation.objects.filter(subject_id__in=ids)
        .order_by()
        .annotate(randomized_on=RandomizationDate(""))
        .values_list("subject_id", "randomized_on")
    )
    return dict(rows)


def randomization_date(subject: Subject) -> date | None:
    """The subject's randomization date; None while not randomized (one query)."""
    return randomization_dates([subject.pk]).get(subject.pk)


def _yes_no(field: str, value) -> str:
    if value is None:
        return "missing"
    if field == "ecog":
        return str(value)
    if field == "macrovascular_or_extrahepatic":
        return "present" if value else "absent"
    return "yes" if value else "no"


def _differences(allocation: Allocation, current) -> list[str]:
    """The factors whose value used at randomization differs from the CRF's value now."""
    differences = []
    for field in FACTOR_FIELDS:
        used, now = getattr(allocation, field), getattr(current, field)
        if (int(used) if field == "ecog" else bool(used)) != (
            int(now) if field == "ecog" else bool(now)
        ):
            differences.append(
                f"{FACTOR_NAMES[field]}: {_yes_no(field, used)} at randomization, "
                f"{_yes_no(field, now)} now"
            )
    return differences


def crf_mismatch(allocation: Allocation) -> str:
    """How the stratification values ``allocation`` used differ from the CRF now (a sentence;
    "" when they agree), kept on it with ``current_factors`` (None when the CRF data are now
    missing). No query when the allocation was read with ``subject__eligibility``."""
    subject = allocation.subject
    try:
        current = eligibility.stratification_factors(
            subject, assessment=getattr(subject, "eligibility", None)
        )
    except DomainError as exc:
        allocation.current_factors = None
        allocation.mismatch = f"The stratification data are now missing: {exc}"
        return allocation.mismatch
    differences = _differences(allocation, current)
    allocation.current_factors = current
    allocation.mismatch = "; ".join(differences) + "." if differences else ""
    return allocation.mismatch


def stratification_mismatches(queryset: QuerySet | None = None) -> list[Allocation]:
    """The allocations whose stratification values differ from the CRF now (one query).

    The database picks the allocations that may differ (``eligibility.factors_may_differ``);
    Python words the differences. Each returned allocation carries ``current_factors`` (None
    when the CRF data are now missing) and ``mismatch`` (a sentence). The allocation always
    stands; a data query flags it.
    """
    allocations = (queryset if queryset is not None else Allocation.objects.all()).filter(
        eligibility.factors_may_differ(
            "subject__eligibility", {field: field for field in FACTOR_FIELDS}
        )
    )
    allocations = allocations.select_related("subject__site", "subject__eligibility")
    return [allocation for allocation in allocations if crf_mismatch(allocation)]


def _arm_counts() -> dict:
    return {"A": Count("pk", filter=Q(arm=Arm.A)), "B": Count("pk", filter=Q(arm=Arm.B))}


def balance_report(user) -> dict:
    """Counts per arm per stratum, per site and per factor level; free slots per stratum.

    Counts are over the allocations the user may see (``access.scope_to_user``); free slots and the
    low-slot warnings are study-wide and shown to users who see all sites. Raises AccessDenied
    for site users (they see their own allocations only).
    """
    if not access.can_read_exports(user):
        raise AccessDenied("The balance report is for the study team, not for site users.")
    allocations = access.scope_to_user(Allocation.objects.all(), user)
    study_wide = access.sees_all_sites(user)
    threshold = low_slots_threshold()

    by_key = defaultdict(lambda: {"A": 0, "B": 0})
    for row in allocations.values(*FACTOR_FIELDS).annotate(**_arm_counts()).order_by():
        key = (row["macrovascular_or_extrahepatic"], row["ecog"], row["prior_locoregional_therapy"])
        by_key[key]["A"] += row["A"]
        by_key[key]["B"] += row["B"]

    rlist = active_list()
    free = {}
    totals_per_stratum = {}
    if rlist is not None and study_wide:
        for stratum in Stratum.objects.filter(rlist=rlist).annotate(
            free=Count("slots", filter=Q(slots__allocation__isnull=True))
        ):
            free[stratum.number] = stratum.free
            totals_per_stratum[stratum.number] = stratum.slot_count

    strata, warnings = [], []
    for definition in listgen.STRATA:
        counts = by_key[definition.key]
        row = {
            "stratum": f"S{definition.number}",
            "label": factor_labels(*definition.key),
            "macrovascular_or_extrahepatic": definition.macrovascular_or_extrahepatic,
            "ecog": definition.ecog,
            "prior_locoregional_therapy": definition.prior_locoregional_therapy,
            "A": counts["A"],
            "B": counts["B"],
            "total": counts["A"] + counts["B"],
            "difference": counts["A"] - counts["B"],
        }
        if study_wide and rlist is not None:
            left = free.get(definition.number, 0)
            row["slots_total"] = totals_per_stratum.get(definition.number, 0)
            row["slots_left"] = left
            row["low"] = left <= threshold
            if row["low"]:
                warnings.append(
                    f"Stratum S{definition.number} ({row['label']}) has {left} free slot"
                    f"{'' if left == 1 else 's'} left (warning at {threshold} or fewer)."
                )
        strata.append(row)

    sites = [
        {
            "site": row["subject__site__code"],
            "A": row["A"],
            "B": row["B"],
            "total": row["A"] + row["B"],
        }
        for row in allocations.values("subject__site__code")
        .annotate(**_arm_counts())
        .order_by("subject__site__code")
    ]

    factors = []
    for field in FACTOR_FIELDS:
        index = FACTOR_FIELDS.index(field)
        levels = (0, 1) if field == "ecog" else (False, True)
        for level in levels:
            a = sum(c["A"] for k, c in by_key.items() if k[index] == level)
            b = sum(c["B"] for k, c in by_key.items() if k[index] == level)
            factors.append(
                {
                    "factor": field,
                    "factor_label": FACTOR_NAMES[field],
                    "level": _yes_no(field, level),
                    "A": a,
                    "B": b,
                    "total": a + b,
                }
            )

    mismatches = [
        {
            "subject_identifier": a.subject.subject_identifier,
            "site": a.subject.site.code,
            "randomization_number": a.randomization_number,
            "mismatch": a.mismatch,
        }
        for a in stratification_mismatches(allocations)
    ]
    if rlist is None:
        warnings.insert(0, "There is no active randomization list: nobody can be randomized.")
    total_a = sum(r["A"] for r in strata)
    total_b = sum(r["B"] for r in strata)
    return {
        "generated_at": timezone.now().isoformat(),
        "scope": "all sites" if study_wide else "your sites",
        "active_list": (
            {"id": rlist.pk, "generated_at": rlist.generated_at.isoformat()} if rlist else None
        ),
        "low_slots_threshold": threshold,
        "slots_shown": study_wide and rlist is not None,
        "totals": {"A": total_a, "B": total_b, "total": total_a + total_b},
        "strata": strata,
        "sites": sites,
        "factors": factors,
        "mismatches": mismatches,
        "warnings": warnings,
    }
