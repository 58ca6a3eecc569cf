"""What the sponsor exports of the randomization: each subject's allocation (never a slot, a
block or a seed: those stay with the statistician)."""

from core.export_spec import Item, ItemType, model_items, subject_form

from .models import Allocation

FORMS = [
    subject_form(
        name="allocations",
        label="Randomization",
        model="randomization.Allocation",
        oid="RAND",
        select_related=("stratum",),
        items=(
            *model_items(
                Allocation,
                (
                    "randomization_number",
                    "arm",
                    "allocated_at",
                    "macrovascular_or_extrahepatic",
                    "ecog",
                    "prior_locoregional_therapy",
                ),
            ),
            Item("stratum", "Stratum", ItemType.TEXT, "stratum_label"),
        ),
    ),
]
