"""The abstract bases of the audited models: ``AuditedModel`` (reference and configuration data)
and ``CrfRecord`` (a record of a subject's casebook).

Their fields are those the models declared one by one before (same columns, types and indexes),
and the history models keep their names: adopting a base changes no table (the migrations
test in tests/test_crf_base.py checks that every row and history row is kept).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

from django.apps import apps
from django.core import checks
from django.db import models
from django.urls import reverse
from simple_history.models import HistoricalRecords

from .audit import AuditedManager

# The casebook order: by site, then by the subject's sequence at the site.
SUBJECT_ORDER = ["subject__site__code", "subject__sequence"]


class AuditedHistory(HistoricalRecords):
    """One ``HistoricalRecords`` for every subclass (``inherit=True``): each leaves out the
    fields named in its model's ``history_excluded_fields`` that it has."""

    def excluded_from(self, model) -> list[str]:
        names = {f.name for f in model._meta.fields}
        wanted = [*self.excluded_fields, *getattr(model, "history_excluded_fields", ())]
        return [name for name in wanted if name in names]

    def fields_included(self, model):
        excluded = set(self.excluded_from(model))
        return [f for f in model._meta.fields if f.name not in excluded]

    def get_meta_options(self, model):
        """simple-history's options, and an index of the deletions (a partial index: only the
        history rows of type "-", by date then record): the sponsor API's deletions feed
        pages through it, reading a page's rows whatever the size of the history."""
        options = super().get_meta_options(model)
        digest = hashlib.md5(model._meta.label_lower.encode(), usedforsecurity=False)
        options["indexes"] = (
            *options.get("indexes", ()),
            models.Index(
                fields=["history_date", model._meta.pk.attname],
                condition=models.Q(history_type="-"),
                name=f"{model._meta.app_label[:12]}_del_{digest.hexdigest()[:10]}",
            ),
        )
        return options

    def create_history_model(self, model, inherited):
        history_model = super().create_history_model(model, inherited)
        history_model._history_excluded_fields = self.excluded_from(model)
        return history_model


class AuditedModel(models.Model):
    """Audited data: writes through ``core.audit`` (``AuditedManager``), a history of every
    change. ``updated`` (where a model has it) stays out of the history: the history's own date
    says when. A subclass with its own queryset sets ``objects =
    AuditedManager.from_queryset(TheQuerySet)()``; it never declares a second history."""

    history_excluded_fields: ClassVar[tuple[str, ...]] = ("updated",)

    objects = AuditedManager()
    history = AuditedHistory(inherit=True)

    class Meta:
        abstract = True


def after_own_fields(field: models.Field) -> models.Field:
    """Sort ``field`` of an abstract base after the subclass's own fields, where the models
    declared it before the base existed: forms, admin pages, audit trails and exports list the
    fields in the same order."""
    field.creation_counter += 1_000_000
    return field


class CrfRecord(AuditedModel):
    """A record of a subject's casebook: scoped by the subject's site, in the subject's audit
    trail, edit-checked after a change, ordered by subject.

    A subclass reached through another record sets ``site_lookup``/``subject_lookup`` (e.g.
    ``"cycle__subject__site"``/``"cycle__subject"``) and its ``Meta.ordering``; a row with no
    timestamps of its own removes them (``created = None``, ``updated = None``). Its page is
    ``url_name`` reversed with the subject identifier then ``url_args`` (attributes of the
    record), or, for a row shown on its parent's page, the page of ``url_parent``."""

    site_lookup: ClassVar[str] = "subject__site"
    subject_lookup: ClassVar[str] = "subject"
    url_name: ClassVar[str] = ""
    url_args: ClassVar[tuple[str, ...]] = ()
    url_parent: ClassVar[str] = ""

    created = after_own_fields(models.DateTimeField(auto_now_add=True))
    updated = after_own_fields(models.DateTimeField(auto_now=True, db_index=True))

    class Meta:
        abstract = True
        ordering = SUBJECT_ORDER

    def get_absolute_url(self) -> str:
        if self.url_parent:
            return getattr(self, self.url_parent).get_absolute_url()
        args = [getattr(self, name) for name in self.url_args]
        return reverse(self.url_name, args=[self.subject_of_record().subject_identifier, *args])

    def subject_of_record(self):
        """The subject this record belongs to (its ``subject_lookup``)."""
        if self.subject_lookup == "pk":
            return self
        value = self
        for part in self.subject_lookup.split("__"):
            value = getattr(value, part)
        return value


@checks.register(checks.Tags.models)
def check_crf_pages(app_configs=None, **kwargs) -> list[checks.Error]:
    """A CRF that names no page fails ``manage.py check``, not its first link."""
    return [
        checks.Error(
            f"{model._meta.label} names no page: set url_name (and url_args) or url_parent.",
            obj=model,
            id="core.E001",
        )
        for model in apps.get_models()
        if issubclass(model, CrfRecord) and not (model.url_name or model.url_parent)
    ]
