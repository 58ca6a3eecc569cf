"""What the sponsor exports of the randomization: each subject's allocation (never a slot, a
block or a seed: those stay with the statistician)."""

from core.export_spec import ExportForm, Item, ItemType, model_items

from .models import Allocation

FORMS = [
    ExportForm(
        name="allocations",
        label="Randomization",
        model="randomization.Allocation",
        oid="RAND",
        select_related=("subject__site", "stratum"),
        ordering=("subject__site__code", "subject__sequence"),
        items=(
            Item("subject", "Subject", ItemType.TEXT, "subject.subject_identifier"),
            Item("site", "Site code", ItemType.TEXT, "subject.site.code"),
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
