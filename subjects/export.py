"""What the sponsor exports of sites and subjects (``core.export_spec``)."""

from core.export_spec import ExportForm, Item, ItemType, model_items

from .models import Site, Subject

FORMS = [
    ExportForm(
        name="sites",
        label="Sites",
        model="subjects.Site",
        oid="SITE",
        subject_path="",
        items=model_items(Site, ("code", "name", "country", "active")),
        ordering=("code",),
    ),
    ExportForm(
        name="subjects",
        label="Subject and demographics",
        model="subjects.Subject",
        oid="DM",
        subject_path="pk",
        select_related=("site",),
        ordering=("site__code", "sequence"),
        items=(
            *model_items(Subject, ("subject_identifier",)),
            Item("site", "Site code", ItemType.TEXT, "site.code", length=10),
            # Screening number, initials, date of birth: direct identifiers, for the roles that
            # may see them (``core.access.DIRECT_IDENTIFIER_FIELDS``).
            *model_items(
                Subject, ("screening_number", "screening_date", "initials", "date_of_birth")
            ),
            Item("age", "Age at consent (years)", ItemType.INTEGER, "age", unit="years"),
            *model_items(
                Subject,
                ("sex", "consent_date", "consent_version", "status", "status_date", "updated"),
            ),
        ),
    ),
]
