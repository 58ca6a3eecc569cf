"""Edit checks of the RECIST tumor assessments (declared in this app's
``contributions``, joined by ``queries.checks``). Each finder is one query over the stored
fields (the services store the derived response at every save):

* REC-001 the investigator's overall response differs from the RECIST 1.1 derived one;
* REC-002 an assessment with a target lesion not measured (the response is then NE unless
  progression is shown);
* REC-003 new lesions recorded but the investigator's overall response is not PD.
"""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce

from core.edit_checks import EditCheck, RecordRows, Scope, Severity

from .models import RESPONSE_CHOICES, TargetLesion, TumorAssessment
from .recist import Response

ASSESSMENTS = RecordRows(
    TumorAssessment, lambda row: f"tumor assessment {row['number']}", extra=("number",)
)
LABELS = dict(RESPONSE_CHOICES)


def _responses_differ(scope: Scope):
    rows = (
        ASSESSMENTS.narrowed(scope)
        .exclude(derived_response="")
        .exclude(investigator_response=F("derived_response"))
        .values(*ASSESSMENTS.columns, "investigator_response", "derived_response")
    )
    for row in rows:
        yield ASSESSMENTS.violation(
            row,
            "investigator_response",
            f"The investigator's overall response is {LABELS[row['investigator_response']]}; "
            f"RECIST 1.1 derives {LABELS[row['derived_response']]} from the measurements, "
            "non-target lesions and new lesions: correct the data or the response, or confirm "
            "the investigator's reading.",
            {
                "investigator_response": row["investigator_response"],
                "derived_response": row["derived_response"],
            },
        )


def _target_measurements_incomplete(scope: Scope):
    targets = (
        TargetLesion.objects.filter(subject=OuterRef("subject"))
        .order_by()
        .values("subject")
        .annotate(n=Count("pk"))
        .values("n")
    )
    rows = (
        ASSESSMENTS.narrowed(scope)
        .annotate(
            targets=Coalesce(Subquery(targets), 0),
            measured=Count("measurements", filter=Q(measurements__diameter__isnull=False)),
        )
        .filter(targets__gt=F("measured"))
        .values(*ASSESSMENTS.columns, "targets", "measured")
    )
    for row in rows:
        missing = row["targets"] - row["measured"]
        yield ASSESSMENTS.violation(
            row,
            "",
            f"{missing} of the {row['targets']} target lesions "
            f"{'was' if missing == 1 else 'were'} not measured at this assessment: the "
            "response is not evaluable. Enter the diameters (0 if a lesion disappeared), or "
            "confirm they were not evaluated.",
            {"targets": row["targets"], "measured": row["measured"]},
        )


def _new_lesion_without_progression(scope: Scope):
    rows = (
        ASSESSMENTS.narrowed(scope)
        .filter(new_lesions=True)
        .exclude(investigator_response=Response.PD.value)
        .values(*ASSESSMENTS.columns, "investigator_response")
    )
    for row in rows:
        yield ASSESSMENTS.violation(
            row,
            "new_lesions",
            "New lesions are recorded but the investigator's overall response is "
            f"{LABELS[row['investigator_response']]}: an unequivocal new lesion is progressive "
            "disease (RECIST 1.1). Correct the response, or untick new lesions if the finding "
            "is equivocal.",
            {"new_lesions": True, "investigator_response": row["investigator_response"]},
        )


CHECKS: tuple[EditCheck, ...] = (
    EditCheck(
        "REC-001",
        "Investigator's overall response differs from the RECIST 1.1 derived response",
        TumorAssessment,
        ("investigator_response",),
        Severity.WARNING,
        _responses_differ,
    ),
    EditCheck(
        "REC-002",
        "Tumor assessment with a target lesion not measured",
        TumorAssessment,
        ("target_sum",),
        Severity.WARNING,
        _target_measurements_incomplete,
    ),
    EditCheck(
        "REC-003",
        "New lesions recorded without progressive disease by the investigator",
        TumorAssessment,
        ("new_lesions", "investigator_response"),
        Severity.ERROR,
        _new_lesion_without_progression,
    ),
)
