"""What the sponsor exports of the RECIST v1.1 tumor assessments (``core.export_spec``): the
baseline target and non-target lesions, and each follow-up assessment with its investigator's
and derived responses, its target measurements and its non-target statuses as child groups."""

from core.export_spec import ChildGroup, Item, ItemType, model_items, subject_form

from .models import (
    MAX_TARGETS,
    NonTargetAssessment,
    NonTargetLesion,
    TargetLesion,
    TargetMeasurement,
    TumorAssessment,
)
from .services import ASSESSMENT_FIELDS, DERIVED_FIELDS, LESION_FIELDS, TARGET_FIELDS

LESION_NUMBERS = tuple((str(n), f"T{n}") for n in range(1, MAX_TARGETS + 1))

FORMS = [
    subject_form(
        name="target-lesions",
        label="Target lesions (baseline)",
        model="efficacy.TargetLesion",
        oid="TL",
        repeating=True,
        domain_key="number",
        then_by=("number",),
        items=model_items(TargetLesion, ("number", *TARGET_FIELDS, "updated")),
    ),
    subject_form(
        name="non-target-lesions",
        label="Non-target lesions (baseline)",
        model="efficacy.NonTargetLesion",
        oid="NTL",
        repeating=True,
        domain_key="number",
        then_by=("number",),
        items=model_items(NonTargetLesion, ("number", *LESION_FIELDS, "updated")),
    ),
    subject_form(
        name="tumor-assessments",
        label="Tumor assessments (RECIST 1.1)",
        model="efficacy.TumorAssessment",
        oid="TA",
        repeating=True,
        domain_key="number",
        prefetch_related=("measurements__lesion", "non_target_statuses__lesion"),
        then_by=("number",),
        items=model_items(
            TumorAssessment, ("number", *ASSESSMENT_FIELDS, *DERIVED_FIELDS, "updated")
        ),
        children=(
            ChildGroup(
                name="measurements",
                label="Target lesion measurements",
                related="measurements",
                model="efficacy.TargetMeasurement",
                parent_field="assessment",
                key="lesion",
                items=(
                    Item(
                        "lesion",
                        "Target lesion number",
                        ItemType.INTEGER,
                        "lesion.number",
                        codelist=LESION_NUMBERS,
                    ),
                    *model_items(TargetMeasurement, ("diameter",)),
                ),
            ),
            ChildGroup(
                name="non_targets",
                label="Non-target lesion status",
                related="non_target_statuses",
                model="efficacy.NonTargetAssessment",
                parent_field="assessment",
                items=(
                    Item("lesion", "Non-target lesion number", ItemType.INTEGER, "lesion.number"),
                    *model_items(NonTargetAssessment, ("status",)),
                ),
            ),
        ),
    ),
]
