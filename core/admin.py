"""Admin building blocks shared by every app: site scoping and a reason for every change.

Who gets in: the admin is the data managers' tool. The admin site asks ``access.may_use_admin``
(data managers, statisticians, superusers) on every page and at its login, whatever ``is_staff``
says: site staff, investigators, monitors and the sponsor work in the site app only.
"""

import types

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.utils import flatten_fieldsets, get_fields_from_path, unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from simple_history.admin import SimpleHistoryAdmin

from . import access
from .errors import DomainError


class ScopedAdminMixin:
    """Each admin page lists and offers only the records of the user's sites, and offers a change
    form for a record only to a user the access module lets change it."""

    #: The ``core.access`` question that decides, record by record, whether the user may change
    #: it here; ``None``: the model permission alone (a data manager's sites and memberships).
    change_question: str | None = None

    def get_queryset(self, request):
        return access.scope_to_user(super().get_queryset(request), request.user)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if allowed and obj is not None and self.change_question:
            return getattr(access, self.change_question)(request.user, obj)
        return allowed

    def get_list_filter(self, request):
        """A filter on a site (or a subject) offers only the values of the visible records:
        Django's plain related filter would list every site of the study."""
        return [self._scoped_filter(entry) for entry in super().get_list_filter(request)]

    def _scoped_filter(self, entry):
        if not isinstance(entry, str):
            return entry
        field = get_fields_from_path(self.model, entry)[-1]
        related = getattr(field, "related_model", None)
        if hasattr(related, "site_lookup"):
            return (entry, admin.RelatedOnlyFieldListFilter)
        return entry

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related, "site_lookup"):
            kwargs["queryset"] = access.scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReasonForChangeAdminMixin:
    """Adds a required 'Reason for change' to the change form of an existing record.

    Subclasses save through their app's service in ``save_through_service(request, obj, form,
    change, reason)``; a domain error becomes a message on the form, never a 500.
    """

    def get_form(self, request, obj=None, **kwargs):
        # The reason is a form field, not a model field: keep it out of the model form's fields.
        # (``fields=None`` is Django asking which fields the form has: pass that through.)
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"]:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != "change_reason"]
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            return form

        class WithReason(form):
            change_reason = forms.CharField(
                label="Reason for change",
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text="Required: recorded in the audit trail with your name and the time.",
            )

        return WithReason

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        can_change = obj is not None and self.has_change_permission(request, obj)
        if can_change and "change_reason" not in fields:
            fields.append("change_reason")
        return fields

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason", "") if change else ""
        self.save_through_service(request, obj, form, change, reason)

    def save_through_service(self, request, obj, form, change, reason):
        raise NotImplementedError

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as exc:
            text = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
            self.message_user(request, f"Not saved: {text}", level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class NoDeleteAdminMixin:
    """Audited records are not deleted from the admin (services delete, with a reason)."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyHistoryAdminMixin:
    """History pages are read-only and scoped like the records themselves.

    simple-history's own views would accept a POST on a past version (a revert) and fall back to
    a deleted object's history without asking whether the user may see its site.
    """

    def _require_visible(self, request, object_id):
        if not self.get_queryset(request).filter(pk=unquote(object_id)).exists():
            raise Http404("No such record at your sites.")

    def history_view(self, request, object_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_visible(request, object_id)
        if request.method != "GET":
            raise PermissionDenied("The audit trail is read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)


class AuditedAdmin(
    ReadOnlyHistoryAdminMixin,
    NoDeleteAdminMixin,
    ReasonForChangeAdminMixin,
    ScopedAdminMixin,
    SimpleHistoryAdmin,
):
    """The base of every admin page on an audited model."""

    history_list_display = ["history_change_reason"]


admin.site.site_header = "mini-EDC: toripalimab + bevacizumab vs sorafenib (HCC, phase III)"
admin.site.site_title = "mini-EDC admin"
admin.site.index_title = "Study administration"


def _admin_site_has_permission(site, request) -> bool:
    """Every admin page (and the admin's "already logged in" check) asks the access module:
    an active staff account that ``access.may_use_admin`` lets in; others go to the login page."""
    user = request.user
    return bool(user.is_active and user.is_staff and access.may_use_admin(user))


class StudyAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login refuses an account the access module keeps out of the admin, even one
    whose ``is_staff`` is set: it is not logged in at all."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not access.may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


admin.site.has_permission = types.MethodType(_admin_site_has_permission, admin.site)
admin.site.login_form = StudyAdminAuthenticationForm


class ReadOnlyAuditedAdmin(AuditedAdmin):
    """Records nobody adds or changes in the admin: services and commands write them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def save_through_service(self, request, obj, form, change, reason):
        raise PermissionDenied("Read-only.")
