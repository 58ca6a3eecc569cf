"""The one write of the vital signs: checked, then saved through the audited write path."""

from django.db import transaction

from core import access
from core.audit import audited_save

from .models import VitalSigns

FIELDS = ("measured_on", "systolic_bp", "position")


def save_vital_signs(subject, *, user, reason: str = "", record=None, **values) -> VitalSigns:
    """Record (or, with ``record`` and ``reason``, correct) the subject's vital signs."""
    access.require_data_entry(user, record or subject)
    with transaction.atomic():
        record = record or VitalSigns(subject=subject)
        for name in FIELDS:
            setattr(record, name, values[name])
        audited_save(record, user=user, reason=reason if record.pk else "Vital signs recorded")
    return record
