"""The exported models whose history rows are the archival file's transactions, in scope."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.db.models import F, OuterRef, Subquery

from core.export_spec import ChildGroup, ExportForm, Item

from .scope import SIGNED, Scope, Signed, _visible

# --- history of the exported models --------------------------------------------------------------


def _subject_expression(form: ExportForm, *, history: bool):
    """The subject's id on a form's record (or history row)."""
    path = form.subject_path
    if path == "pk":
        return F("id") if history else F("pk")
    if "__" not in path and history:
        return F(f"{path}_id")
    return F(f"{path}__pk")


@dataclass
class Audited:
    """An exported model whose history rows are transactions: a form's, or a child group's."""

    form: ExportForm
    group: ChildGroup | None
    rank: int

    @cached_property
    def model(self) -> type[models.Model]:
        return self.group.model_class() if self.group else self.form.model_class()

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    def _parent_history(self) -> models.QuerySet:
        parent = self.form.model_class().history.filter(
            id=OuterRef(f"{self.group.parent_field}_id")
        )
        return parent.order_by("-history_date", "-history_id")

    def _annotations(self) -> dict:
        if self.group is None:
            return {"odm_subject_id": _subject_expression(self.form, history=True)}
        parent_id = F(f"{self.group.parent_field}_id")
        if self.form.subject_path == "pk":
            subject = parent_id
        else:
            subject = Subquery(
                self._parent_history().values(_subject_expression(self.form, history=True).name)[:1]
            )
        annotations = {"odm_subject_id": subject, "odm_parent_key": parent_id}
        domain = _stored_attname(self.form.model_class(), self.form, self.form.domain_key)
        if self.form.repeating and domain:
            annotations["odm_parent_key"] = Subquery(self._parent_history().values(domain)[:1])
        return annotations

    def history(self, scope: Scope) -> models.QuerySet:
        history = self.model.history.annotate(**self._annotations())
        if self.group is None:  # a record of no subject has no place in ClinicalData
            history = history.filter(odm_subject_id__isnull=False)
        subject_ids = scope.subject_ids()
        if subject_ids is not None:
            history = history.filter(odm_subject_id__in=subject_ids)
        return history

    def items(self, identifiers: bool) -> tuple[Item, ...]:
        return _visible(self.group.items if self.group else self.form.items, identifiers)


def audited_models(forms: list[ExportForm]) -> list[Audited]:
    found = []
    for form in forms:
        found.append(Audited(form, None, len(found)))
        for group in form.children:
            if group.model:
                found.append(Audited(form, group, len(found)))
    return found


def _stored_attname(model, form: ExportForm, item_name: str) -> str:
    """The column of an item stored as a plain field of ``model`` (for repeat keys), or ""."""
    item = next((i for i in form.items if i.name == item_name), None)
    if item is None or not isinstance(item.source, str) or "." in item.source:
        return ""
    try:
        return model._meta.get_field(item.source).attname
    except FieldDoesNotExist:
        return ""


def signed_in(audited: list[Audited]) -> tuple[Signed, ...]:
    """The signed forms among the exported ones (their signatures go in the file)."""
    names = {entry.form.name for entry in audited}
    return tuple(signed for signed in SIGNED if signed.form_name in names)


def users_in(scope: Scope, audited: list[Audited]) -> set:
    """Ids of every user who made a history row or a signature in scope (None: no user)."""
    found: set = set()
    for entry in audited:
        rows = _history_in_scope(entry, scope).order_by().values_list("history_user_id", flat=True)
        found.update(rows.distinct())
    for signed in signed_in(audited):
        found.update(
            _signatures(signed, scope).order_by().values_list("signer_id", flat=True).distinct()
        )
    return found


def _history_in_scope(entry: Audited, scope: Scope) -> models.QuerySet:
    """The history rows of ``entry.history(scope)``, found without its per-row subquery of a
    child row's subject: a child row is in scope when its parent has a history row in scope
    (a semi-join, instead of the parent's latest history row looked up row by row)."""
    if entry.group is None:
        return entry.history(scope)
    history = entry.model.history.all()
    subject_ids = scope.subject_ids()
    if subject_ids is None:
        return history
    parent = f"{entry.group.parent_field}_id__in"
    if entry.form.subject_path == "pk":
        return history.filter(**{parent: subject_ids})
    parents = Audited(entry.form, None, entry.rank).history(scope).order_by().values("id")
    return history.filter(**{parent: parents})


def _signatures(signed: Signed, scope: Scope) -> models.QuerySet:
    subject = _subject_expression(signed.form, history=False).name
    signatures = signed.model._default_manager.annotate(
        odm_subject_id=F(f"{signed.parent_field}__{subject}")
    )
    subject_ids = scope.subject_ids()
    if subject_ids is not None:
        signatures = signatures.filter(odm_subject_id__in=subject_ids)
    return signatures
