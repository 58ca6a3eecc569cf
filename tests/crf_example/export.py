from core.export_spec import Item, ItemType, model_items, subject_form

from .models import VitalSigns

FORMS = [
    subject_form(
        name="vital-signs",
        label="Vital signs",
        model="crf_example.VitalSigns",
        oid="VITALS",
        repeating=True,
        then_by=("measured_on", "pk"),
        items=model_items(
            VitalSigns,
            ("measured_on", "systolic_bp", "position", "updated"),
            systolic_bp=Item(
                "systolic_bp",
                "Systolic blood pressure",
                ItemType.INTEGER,
                "systolic_bp",
                unit="mmHg",
            ),
        ),
    ),
]
