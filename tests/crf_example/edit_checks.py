"""VSX-001: a systolic blood pressure of 180 mmHg or more is confirmed (a hypertensive crisis,
or a typing error)."""

from core.edit_checks import EditCheck, Scope, Severity, Violation

from .models import VitalSigns

HIGH = 180


def _high_systolic(scope: Scope):
    rows = (
        scope.narrow(VitalSigns.objects.all(), "subject")
        .filter(systolic_bp__gte=HIGH)
        .values(
            "pk", "subject_id", "subject__site_id", "subject__subject_identifier", "systolic_bp"
        )
    )
    for row in rows:
        yield Violation(
            row["subject_id"],
            row["subject__site_id"],
            VitalSigns,
            row["pk"],
            "systolic_bp",
            f"{row['subject__subject_identifier']} vital signs",
            f"A systolic blood pressure of {row['systolic_bp']} mmHg: confirm it.",
            {"systolic_bp": row["systolic_bp"]},
        )


CHECKS = (
    EditCheck(
        code="VSX-001",
        title=f"Systolic blood pressure of {HIGH} mmHg or more",
        model=VitalSigns,
        fields=("systolic_bp",),
        severity=Severity.WARNING,
        finder=_high_systolic,
    ),
)
