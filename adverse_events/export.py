"""What the sponsor exports of adverse events: the AE CRF, CTCAE coding, and the causality to
each study drug as a repeating child group (``core.export_spec``)."""

from core.export_spec import ChildGroup, Item, ItemType, model_items, subject_form

from .models import SERIOUS_CRITERIA_FIELDS, AdverseEvent, AeCausality


def ae_number_item(name: str, label: str, via: str) -> Item:
    """The AE a record of another form points at (its foreign key ``via``), exported as the AE's
    number (``ae_number`` of this form): the key the sponsor joins on, never a database id."""
    return Item(name, label, ItemType.INTEGER, f"{via}.ae_number")


FORMS = [
    subject_form(
        name="adverse-events",
        label="Adverse events",
        model="adverse_events.AdverseEvent",
        oid="AE",
        repeating=True,
        domain_key="ae_number",
        select_related=("term",),
        prefetch_related=("causalities",),
        then_by=("ae_number",),
        items=(
            *model_items(AdverseEvent, ("ae_number",)),
            Item("meddra_code", "MedDRA code", ItemType.TEXT, "term.meddra_code", length=8),
            Item("term", "CTCAE term", ItemType.TEXT, "term.term"),
            Item("soc", "MedDRA system organ class", ItemType.TEXT, "term.soc"),
            *model_items(
                AdverseEvent,
                (
                    "verbatim_term",
                    "grade",
                    "onset_date",
                    "end_date",
                    "ongoing",
                    "serious",
                    *SERIOUS_CRITERIA_FIELDS,
                    "site_aware_at",
                    "sae_reported_at",
                    "outcome",
                    "death_date",
                    "immune_related",
                    "treatment_given",
                    "treatment_details",
                    "updated",
                ),
            ),
        ),
        children=(
            ChildGroup(
                name="causality",
                label="Causality per study drug",
                related="causalities",
                model="adverse_events.AeCausality",
                parent_field="adverse_event",
                key="drug",
                items=model_items(AeCausality, ("drug", "causality", "related", "action_taken")),
            ),
        ),
    ),
]
