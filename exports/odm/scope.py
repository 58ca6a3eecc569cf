"""What a file holds: the forms of ClinicalData, the signed forms, and whose data (``Scope``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from functools import cached_property

from django.db import models

from core import access, registry
from core.export_spec import ExportForm, Item, SignedForm

from .. import records

# --- what is exported ----------------------------------------------------------------------------


def clinical_forms() -> list[ExportForm]:
    """The forms of ClinicalData: those of a subject (the sites are Locations)."""
    return [form for form in records.export_forms() if form.subject_path]


def subject_form() -> ExportForm:
    return next(form for form in records.export_forms() if form.subject_path == "pk")


class UnknownForm(ValueError):
    """A form asked for by name that is not a form of ClinicalData (the sentence says which)."""


def selected_forms(names: Iterable[str] | None) -> list[ExportForm]:
    """The forms of ClinicalData a file holds: all of them (``names`` None or empty), or those
    named (registry names, e.g. ``adverse-events``) in the registry's order, with the subjects'
    form always (each ``SubjectData`` is built from it). ``UnknownForm`` names the unknown ones
    and lists the choices."""
    forms = clinical_forms()
    wanted = {name.strip() for name in names or () if name.strip()}
    if not wanted:
        return forms
    unknown = sorted(wanted - {form.name for form in forms})
    if unknown:
        raise UnknownForm(
            f"Unknown form{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. "
            f"Choose among: {', '.join(form.name for form in forms)}."
        )
    return [form for form in forms if form.name in wanted or form.subject_path == "pk"]


def site_form() -> ExportForm:
    return next(form for form in records.export_forms() if not form.subject_path)


def _visible(items: Iterable[Item], identifiers: bool) -> tuple[Item, ...]:
    return tuple(item for item in items if identifiers or not item.direct_identifier)


class Signed(SignedForm):
    """A signed form of the registry (``core.export_spec.SignedForm``), with its export form."""

    @cached_property
    def form(self) -> ExportForm:
        return records.form_named(self.form_name)


def signed_forms() -> tuple[Signed, ...]:
    """Every app's ``signed_forms`` (eligibility sign-off, casebook sign-off...), layer order."""
    return tuple(
        Signed(**{f.name: getattr(spec, f.name) for f in fields(spec)})
        for spec in registry.signed_forms()
    )


SIGNED = signed_forms()


# --- scope ---------------------------------------------------------------------------------------


@dataclass
class Scope:
    """Whose export: a user's (their sites, identifiers as their role allows) or, with no user,
    an operator's study-wide export (identifiers only when asked for)."""

    user: object | None = None
    identifiers: bool = False

    @classmethod
    def of(cls, user) -> Scope:
        return cls(user, records.identifiers_for(user))

    @cached_property
    def site_ids(self) -> set[int] | None:
        """None: every site."""
        if self.user is None or access.sees_all_sites(self.user):
            return None
        return access.member_site_ids(self.user)

    def records(self, form: ExportForm) -> models.QuerySet:
        if self.user is None:
            return form.queryset()
        return records.records(form, self.user)

    def subject_ids(self) -> models.QuerySet | None:
        """Ids of every subject ever at the user's sites (deleted ones too), from the history."""
        if self.site_ids is None:
            return None
        model = subject_form().model_class()
        lookup = access.site_lookup_of(model)
        return model.history.filter(**{f"{lookup}__in": self.site_ids}).values("id")
