"""What the sponsor exports of the end of treatment, the survival follow-up (with the subsequent
anticancer therapies as a child group) and the end of study (``core.export_spec``)."""

from adverse_events.export import ae_number_item
from core.export_spec import ChildGroup, model_items, subject_form

from .models import EndOfStudy, EndOfTreatment, SubsequentTherapy, SurvivalFollowUp
from .services import EOS_FIELDS, EOT_FIELDS, FOLLOW_UP_FIELDS

FORMS = [
    subject_form(
        name="end-of-treatment",
        label="End of treatment",
        model="survival.EndOfTreatment",
        oid="EOT",
        select_related=("adverse_event",),
        items=model_items(
            EndOfTreatment,
            (*EOT_FIELDS, "updated"),
            adverse_event=ae_number_item(
                "adverse_event", "AE number of the toxicity", "adverse_event"
            ),
        ),
    ),
    subject_form(
        name="survival-follow-up",
        label="Survival follow-up",
        model="survival.SurvivalFollowUp",
        oid="SFU",
        repeating=True,
        domain_key="contact_number",
        prefetch_related=("therapies",),
        then_by=("contact_number",),
        items=model_items(SurvivalFollowUp, ("contact_number", *FOLLOW_UP_FIELDS, "updated")),
        children=(
            ChildGroup(
                name="subsequent_therapy",
                label="Subsequent anticancer therapy",
                related="therapies",
                model="survival.SubsequentTherapy",
                parent_field="follow_up",
                items=model_items(SubsequentTherapy, ("agent", "start_date")),
            ),
        ),
    ),
    subject_form(
        name="end-of-study",
        label="End of study",
        model="survival.EndOfStudy",
        oid="EOS",
        select_related=("death_adverse_event",),
        items=model_items(
            EndOfStudy,
            (*EOS_FIELDS, "updated"),
            death_adverse_event=ae_number_item(
                "death_adverse_event", "AE number of the fatal event", "death_adverse_event"
            ),
        ),
    ),
]
