"""The dashboard: per site and study-wide figures over the sites the user may see (subjects by
status, screening subjects waiting for a decision, open data queries by age, SAE reports overdue
and due soon, the enrollment curve and the arm balance). Read-only: no form writes here."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from core.charts import bar_chart
from monitoring.selectors import sdv_progress

from . import charts, selectors


def _arm_rows(balance: dict, study_wide: bool) -> list[tuple[str, int]]:
    arms = [value for value, _ in balance["arms"]]
    rows = [(f"All: arm {arm}", n) for arm, n in zip(arms, balance["totals"], strict=True)]
    if study_wide and len(balance["sites"]) > 1:
        for site in balance["sites"]:
            rows += [
                (f"Site {site['site']}: arm {arm}", n)
                for arm, n in zip(arms, site["counts"], strict=True)
            ]
    return rows


@login_required
def home(request):
    user = request.user
    scope = selectors.scope_for(user, request.GET.get("site", ""))
    if scope.refused:
        messages.warning(
            request,
            f"You do not see site {scope.refused}: the dashboard shows the sites you see.",
        )
    now = timezone.now()
    subjects = selectors.subjects_in(user, scope)
    allocations = selectors.allocations_in(user, scope)
    by_status = selectors.subjects_by_status(subjects)
    waiting, waiting_total = selectors.awaiting_decision(subjects, now)
    query_ages = selectors.open_queries_by_age(user, scope, now)
    curve = selectors.enrollment_curve(subjects, allocations)
    balance = selectors.arm_balance(allocations)
    return render(
        request,
        "dashboard/home.html",
        {
            "scope": scope,
            "now": now,
            "by_status": by_status,
            "subject_total": sum(n for _, _, n in by_status),
            "waiting": waiting,
            "waiting_total": waiting_total,
            "query_ages": query_ages,
            "query_chart": bar_chart(query_ages),
            "sae": selectors.sae_reports_due(user, scope, now),
            "curve": curve,
            "curve_chart": charts.line_chart(curve, ("consented", "randomized")),
            "balance": balance,
            "balance_chart": bar_chart(_arm_rows(balance, scope.study_wide)),
            "sdv": sdv_progress(user, site_id=scope.site.pk if scope.site else None),
        },
    )
