"""Demo queries: the edit checks' first sweep over the demo study, a few answers by the sites and
one query closed by the data manager as confirmed correct, all through ``sweep`` and ``services``.

It runs as ``seed_follow_up``, after every app's ``seed`` and the subjects' follow-up (status
changes), so the sweep sees the study as the demo leaves it and a second sweep changes nothing.
The other seeders leave a few deliberate problems for it, and the default demo no others: an
immune-related event in the sorafenib arm (AE-005), a serious event reported late (AE-003), an
event entered twice (AE-006), an ECOG corrected after randomization (RAND-001, and SUBJ-001: the
correction voided the eligibility signature), a subject in screening weeks after consent
(SUBJ-005), an investigator's response differing from the RECIST derivation (REC-001), a weight
corrected after the bevacizumab dose was given (TRT-003).
"""

from __future__ import annotations

from collections import Counter

from core.roles import Role

from . import services
from .models import DataQuery, ResponseReason
from .sweep import run_edit_checks

# What a site answers to a query of these checks (the others stay open for the demo).
SITE_ANSWERS = {
    "AE-005": (
        ResponseReason.CONFIRMED_CORRECT,
        "The investigator confirms the immune-related assessment (lymphocytic infiltrate on "
        "the skin biopsy); the flag is correct.",
    ),
    "AE-003": (
        ResponseReason.OTHER,
        "The site learned of the event on a Saturday and reported it on the Monday; a protocol "
        "deviation has been filed.",
    ),
    "RAND-001": (
        ResponseReason.CONFIRMED_CORRECT,
        "The CRF's ECOG is right (corrected after source data verification); the value used at "
        "randomization was a transcription error.",
    ),
    "SUBJ-005": (
        ResponseReason.OTHER,
        "Waiting for the baseline CT scan: the subject is randomized or screen failed next week.",
    ),
}
# The first answered query of these checks (in this order) is closed as confirmed correct.
CONFIRMABLE = ("AE-005", "AE-003")
CONFIRMED_TEXT = "Confirmed with the site: the data are correct as entered."


def seed_follow_up(ctx):
    progress = (lambda check: ctx.progress(f"Edit check {check.code} done")) if ctx.bulk else None
    result = run_edit_checks(progress=progress)
    opened = list(DataQuery.objects.system().unresolved().select_related("site", "subject"))
    by_check = Counter(query.check_code for query in opened)
    answered = _answer(ctx, opened)
    closed = _confirm_one(ctx, answered)
    ctx.write(
        f"Edit checks: {result}: "
        + ", ".join(f"{code} {n}" for code, n in sorted(by_check.items()))
        + f"; {len(answered)} answered by the sites"
        + (
            f", query {closed.pk} ({closed.check_code}) closed as confirmed correct"
            if closed
            else ""
        )
    )


def _answer(ctx, queries) -> list:
    """The first queries of each check the sites answer (about one in ten, at most 25 a check)."""
    answered = []
    for code, (reason, text) in SITE_ANSWERS.items():
        of_check = [query for query in queries if query.check_code == code]
        for query in of_check[: min(25, max(1, len(of_check) // 10))]:
            user = ctx.site_user(Role.SITE_STAFF, query.site)
            answered.append(services.answer_query(query, user=user, text=text, reason=reason))
    return answered


def _confirm_one(ctx, answered):
    for code in CONFIRMABLE:
        for query in answered:
            if query.check_code == code:
                data_manager = ctx.users[Role.DATA_MANAGER][0]
                return services.close_query(
                    query, user=data_manager, text=CONFIRMED_TEXT, confirmed_correct=True
                )
    return None
