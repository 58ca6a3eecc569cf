"""Admin building blocks shared by every app: site scoping and a reason for every change."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin

from subjects.models import Site

from .access import scope_to_user
from .errors import DomainError


class ScopedAdminMixin:
    """Each admin page lists and offers only the records of the user's sites."""

    def get_queryset(self, request):
        return scope_to_user(super().get_queryset(request), request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Site or hasattr(related, "site_lookup"):
            kwargs["queryset"] = scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReasonForChangeAdminMixin:
    """Adds a required 'Reason for change' to the change form of an existing record.

    Subclasses save through their app's service in ``save_through_service(request, obj, form,
    change, reason)``; a domain error becomes a message on the form, never a 500.
    """

    def get_form(self, request, obj=None, **kwargs):
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
        if obj is not None and "change_reason" not in fields:
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
            from django.http import HttpResponseRedirect

            return HttpResponseRedirect(request.get_full_path())


class NoDeleteAdminMixin:
    """Audited records are not deleted from the admin (services delete, with a reason)."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class AuditedAdmin(
    NoDeleteAdminMixin, ReasonForChangeAdminMixin, ScopedAdminMixin, SimpleHistoryAdmin
):
    """The base of every admin page on an audited model."""

    history_list_display = ["history_change_reason"]


admin.site.site_header = "mini-EDC: toripalimab + bevacizumab vs sorafenib (HCC, phase III)"
admin.site.site_title = "mini-EDC admin"
admin.site.index_title = "Study administration"
