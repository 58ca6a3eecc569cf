"""Existing assessments keep their data: each lab entered before units were recorded was entered in
the SI unit the CRF asked for. Its value as reported is that value and its unit the SI unit; the
change is recorded in the audit trail (one history row per assessment changed, with the reason).
Signatures made before cover version 1 of the signed data (without these fields): they stay valid.
"""

from django.db import migrations
from django.utils import timezone

# Lab -> the UCUM code of its SI unit (eligibility.units, as of this migration).
SI_UNITS = {
    "anc": "10*9/L",
    "platelets": "10*9/L",
    "hemoglobin": "g/L",
    "total_bilirubin": "umol/L",
    "alt": "U/L",
    "ast": "U/L",
    "creatinine": "umol/L",
    "creatinine_clearance": "mL/min",
    "inr": "1",
    "albumin": "g/L",
}
REASON = (
    "Labs as reported recorded (migration eligibility 0004): the values entered before units "
    "were recorded were in the SI unit the CRF asked for."
)


def fill_labs_as_reported(apps, schema_editor):
    Assessment = apps.get_model("eligibility", "EligibilityAssessment")
    History = apps.get_model("eligibility", "HistoricalEligibilityAssessment")
    own = {f.attname for f in Assessment._meta.concrete_fields}
    copied = [f.attname for f in History._meta.concrete_fields if f.attname in own]
    now = timezone.now()
    for assessment in Assessment.objects.order_by("pk").iterator():
        changed = []
        for lab, code in SI_UNITS.items():
            value = getattr(assessment, lab)
            if value is None or getattr(assessment, f"{lab}_reported") is not None:
                continue
            setattr(assessment, f"{lab}_reported", value)
            setattr(assessment, f"{lab}_unit", code)
            changed += [f"{lab}_reported", f"{lab}_unit"]
        if not changed:
            continue
        assessment.save(update_fields=changed)
        History.objects.create(
            **{name: getattr(assessment, name) for name in copied},
            history_date=now,
            history_type="~",
            history_change_reason=REASON,
            history_user_id=None,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("eligibility", "0003_labs_as_reported_and_prior_therapies"),
    ]

    operations = [
        migrations.RunPython(fill_labs_as_reported, migrations.RunPython.noop),
    ]
