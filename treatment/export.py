"""What the sponsor exports of study drug exposure: the cycles with their IV doses as a
repeating child group, and the sorafenib dosing periods (``core.export_spec``)."""

from adverse_events.export import ae_number_item
from core.export_spec import ChildGroup, model_items, subject_form

from .models import Cycle, IvDose, OralDosingPeriod
from .services import DOSE_FIELDS, PERIOD_FIELDS

FORMS = [
    subject_form(
        name="treatment-cycles",
        label="Treatment cycles and IV doses",
        model="treatment.Cycle",
        oid="CYC",
        repeating=True,
        domain_key="number",
        prefetch_related=("iv_doses__adverse_event",),
        then_by=("number",),
        items=(*model_items(Cycle, ("number", "day1_date", "weight_kg", "updated")),),
        children=(
            ChildGroup(
                name="iv_doses",
                label="IV study drug doses",
                related="iv_doses",
                model="treatment.IvDose",
                parent_field="cycle",
                key="drug",
                # The cause's AE number in place of the foreign key, last like on the form.
                items=model_items(
                    IvDose,
                    ("drug", "planned_dose_mg", *DOSE_FIELDS),
                    adverse_event=ae_number_item(
                        "ae_number", "AE number of the cause", "adverse_event"
                    ),
                ),
            ),
        ),
    ),
    subject_form(
        name="oral-dosing-periods",
        label="Sorafenib dosing periods",
        model="treatment.OralDosingPeriod",
        oid="ORAL",
        repeating=True,
        select_related=("adverse_event",),
        then_by=("start_date", "pk"),
        items=model_items(
            OralDosingPeriod,
            ("drug", *PERIOD_FIELDS, "updated"),
            adverse_event=ae_number_item("ae_number", "AE number of the cause", "adverse_event"),
        ),
    ),
]
