"""The edit checks of study drug exposure (TRT-001..006), declared in ``contributions``.

Each finder is one set-wise query. TRT-004/005 restate the calendar's cycle rule in SQL and
TRT-006 asks the calendar itself (``selectors.calendars``): a check must never disagree with
what the subject's calendar page shows as out of window or overdue.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import (
    DecimalField,
    DurationField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Abs

from core.edit_checks import EditCheck, RecordRows, Scope, Severity
from randomization.arms import StudyDrug, drug_name
from randomization.edit_checks import drugs_outside_the_arm
from randomization.selectors import RandomizationDate
from subjects.edit_checks import SUBJECT_ROWS
from subjects.models import Subject, SubjectStatus

from . import selectors
from .models import Cycle, IvDose, OralDosingPeriod
from .schedule import VisitKind, VisitStatus
from .settings import treatment_settings

IV_DOSES = RecordRows(
    IvDose,
    lambda row: f"cycle {row['cycle__number']} {drug_name(row['drug'])}",
    subject_path="cycle__subject",
    extra=("drug", "cycle__number"),
)
ORAL_PERIODS = RecordRows(
    OralDosingPeriod,
    lambda row: f"{drug_name(row['drug'])} from {row['start_date']:%Y-%m-%d}",
    extra=("drug", "start_date"),
)
CYCLES = RecordRows(Cycle, lambda row: f"cycle {row['number']}", extra=("number",))


_DRUG_OF_ANOTHER_ARM = "{drug} is recorded, but the subject takes {taken}."
_iv_dose_of_another_arm = drugs_outside_the_arm(IV_DOSES, _DRUG_OF_ANOTHER_ARM)
_oral_period_of_another_arm = drugs_outside_the_arm(ORAL_PERIODS, _DRUG_OF_ANOTHER_ARM)


def _bevacizumab_dose_off_weight(scope: Scope):
    values = treatment_settings()
    per_kg = Decimal(values["bevacizumab_dose_mg_per_kg"])
    tolerance = Decimal(values["dose_tolerance_percent"]) / 100
    decimal = DecimalField(max_digits=12, decimal_places=3)
    expected = ExpressionWrapper(F("cycle__weight_kg") * Value(per_kg), output_field=decimal)
    rows = (
        IV_DOSES.narrowed(scope)
        .filter(drug=StudyDrug.BEVACIZUMAB, dose_change_reason="")
        .annotate(
            expected=expected,
            off=ExpressionWrapper(Abs(F("given_dose_mg") - expected), output_field=decimal),
        )
        .filter(off__gt=ExpressionWrapper(F("expected") * Value(tolerance), output_field=decimal))
        .values(*IV_DOSES.columns, "given_dose_mg", "cycle__weight_kg")
    )
    for row in rows:
        weight, given = row["cycle__weight_kg"], row["given_dose_mg"]
        yield IV_DOSES.violation(
            row,
            "given_dose_mg",
            f"Bevacizumab {given} mg was given at {weight} kg, where 15 mg/kg is "
            f"{(per_kg * weight).quantize(Decimal('0.1'))} mg (more than "
            f"{values['dose_tolerance_percent']} % off) and no reason is recorded: give the "
            "reason, or correct the dose or the weight.",
            {"given_dose_mg": given, "weight_kg": weight},
        )


def _cycle_out_of_window(scope: Scope):
    window = timedelta(days=treatment_settings()["cycle_window_days"])
    offset = ExpressionWrapper(F("day1_date") - F("nominal_day1"), output_field=DurationField())
    rows = (
        CYCLES.narrowed(scope)
        .annotate(offset=offset)
        .filter(Q(offset__gt=window) | Q(offset__lt=-window))
        .values(*CYCLES.columns, "day1_date", "nominal_day1")
    )
    for row in rows:
        days = (row["day1_date"] - row["nominal_day1"]).days
        yield CYCLES.violation(
            row,
            "day1_date",
            f"Cycle {row['number']} started on {row['day1_date']:%Y-%m-%d}, {abs(days)} days "
            f"{'after' if days > 0 else 'before'} its scheduled day 1 "
            f"({row['nominal_day1']:%Y-%m-%d}, window ± {window.days} days): confirm the date, "
            "or give the reason for the delay on the doses.",
            {"day1_date": row["day1_date"], "nominal_day1": row["nominal_day1"]},
        )


def _next_cycle_overdue(scope: Scope):
    values = treatment_settings()
    cycle_days, window = values["cycle_days"], values["cycle_window_days"]
    last = Cycle.objects.filter(subject=OuterRef("pk")).order_by("-number")
    latest = scope.latest_today
    rows = (
        SUBJECT_ROWS.narrowed(scope)
        .filter(status=SubjectStatus.RANDOMIZED, allocation__isnull=False)
        .annotate(
            randomized_on=RandomizationDate("allocation"),
            last_number=Subquery(last.values("number")[:1]),
            last_scheduled=Subquery(last.values("nominal_day1")[:1]),
            site_today=scope.site_today("site"),
        )
        .filter(
            Q(last_number__isnull=True, randomized_on__lt=latest - timedelta(days=window))
            | Q(last_scheduled__lt=latest - timedelta(days=cycle_days + window))
        )
        .values(
            *SUBJECT_ROWS.columns,
            "randomized_on",
            "last_number",
            "last_scheduled",
            "site_today",
        )
    )
    for row in rows:
        # Late at the subject's site too (its date may be a day behind ``latest``)?
        today = row["site_today"]
        if row["last_number"] is None:
            late = row["randomized_on"] < today - timedelta(days=window)
        else:
            late = row["last_scheduled"] < today - timedelta(days=cycle_days + window)
        if not late:
            continue
        last_number = row["last_number"] or 0
        due = row["randomized_on"] + timedelta(days=cycle_days * last_number)
        yield SUBJECT_ROWS.violation(
            row,
            "",
            f"Cycle {last_number + 1} was due on {due:%Y-%m-%d} (window ± {window} days) and is "
            "not recorded: enter it, or record the end of treatment.",
            {"next_cycle": last_number + 1, "due": due},
        )


def _visits_overdue(scope: Scope):
    ids = None if scope.subject_ids is None else list(scope.subject_ids)
    kinds = (VisitKind.TUMOR, VisitKind.SAFETY, VisitKind.SURVIVAL)  # the cycles: TRT-005
    overdue = {
        subject_id: visits
        for subject_id, calendar in selectors.calendars(ids, now=scope.now, kinds=kinds).items()
        if (visits := calendar.with_status(VisitStatus.OVERDUE))
    }
    if not overdue:
        return
    rows = Subject.objects.filter(pk__in=list(overdue)).order_by().values(*SUBJECT_ROWS.columns)
    for row in rows:
        visits = sorted(overdue[row["pk"]], key=lambda v: (v.target, v.code))
        listed = "; ".join(
            f"{v.label}: target {v.target:%Y-%m-%d}, window to {v.window_end:%Y-%m-%d}"
            for v in visits
        )
        yield SUBJECT_ROWS.violation(
            row,
            "",
            f"Overdue, nothing recorded: {listed}. Enter the visit, or what ended the series "
            "(the progression, the end of study).",
            {"overdue": ", ".join(v.code for v in visits)},
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "TRT-001",
        "IV study drug recorded that the subject's arm does not take",
        IvDose,
        ("drug",),
        Severity.ERROR,
        _iv_dose_of_another_arm,
    ),
    EditCheck(
        "TRT-002",
        "Sorafenib recorded for a subject whose arm does not take it",
        OralDosingPeriod,
        ("drug",),
        Severity.ERROR,
        _oral_period_of_another_arm,
    ),
    EditCheck(
        "TRT-003",
        "Bevacizumab dose more than 10 % off 15 mg/kg × the cycle's weight, without a reason",
        IvDose,
        ("given_dose_mg",),
        Severity.WARNING,
        _bevacizumab_dose_off_weight,
    ),
    EditCheck(
        "TRT-004",
        "Cycle day 1 outside its window",
        Cycle,
        ("day1_date",),
        Severity.WARNING,
        _cycle_out_of_window,
    ),
    EditCheck(
        "TRT-005",
        "Next treatment cycle overdue",
        Subject,
        (),
        Severity.WARNING,
        _next_cycle_overdue,
    ),
    EditCheck(
        "TRT-006",
        "Tumor assessment, safety or survival follow-up overdue",
        Subject,
        (),
        Severity.WARNING,
        _visits_overdue,
    ),
)
