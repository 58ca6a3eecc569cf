"""Admin of the accounts: the security log (read-only), users and roles (groups).

A change to a user (its details, roles, own permissions or password) or to a role (its name or
permissions; a new role too) needs a reason for change; every security-log entry the change
writes carries it (``events.change_reason``). Users and roles are never deleted.
"""

import json
import types

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm
from django.contrib.auth.models import Group
from django.urls import reverse
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

from core.admin import NoDeleteAdminMixin, ReasonForChangeAdminMixin, StudyAdminMixin
from core.forms import reason_field
from core.roles import Role

from .events import change_reason
from .forms import OwnPasswordChangeForm
from .lockout_admin import unlock_accounts
from .models import AuthEvent
from .services import sync_admin_access

User = get_user_model()


@admin.register(AuthEvent)
class AuthEventAdmin(StudyAdminMixin, admin.ModelAdmin):
    """The security log: readable, never editable."""

    list_display = ("at", "kind", "username", "actor", "ip_address", "details")
    list_select_related = ("actor",)  # nullable: Django's own select_related() skips it
    list_filter = ("kind",)
    search_fields = ("username",)
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuthEvent._meta.fields]
    actions = [unlock_accounts]  # a data manager ends a lockout, with a reason

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="Detail")
    def details(self, obj):
        return json.dumps(obj.detail, sort_keys=True, ensure_ascii=False) if obj.detail else ""


class SecurityChangeAdminMixin(StudyAdminMixin, ReasonForChangeAdminMixin):
    """A change saved with its reason: the security-log entries written while the record and
    its many-to-many fields (roles, permissions) are saved carry it."""

    def save_through_service(self, request, obj, form, change, reason):
        with change_reason(reason):
            obj.save()

    def save_related(self, request, form, formsets, change):
        with change_reason(form.cleaned_data.get("change_reason", "")):
            super().save_related(request, form, formsets, change)
            self.after_related_saved(form.instance)

    def after_related_saved(self, obj):
        pass


class PasswordChangeWithReasonForm(AdminPasswordChangeForm):
    """The admin's "change password" form of a user, with the reason the log records."""

    change_reason = reason_field()

    def save(self, commit=True):
        with change_reason(self.cleaned_data["change_reason"]):
            return super().save(commit=commit)


admin.site.unregister(User)


@admin.register(User)
class StudyUserAdmin(SecurityChangeAdminMixin, UserAdmin):
    """Users are deactivated, never deleted: their names stand in the audit trail. A change
    needs a reason (the password too), written to the security log with each change.

    "Staff status" (the admin) follows the user's roles: it is set after the groups are saved,
    never by hand (``services.sync_admin_access``)."""

    list_filter = ("is_active", "is_staff", "groups")
    change_password_form = PasswordChangeWithReasonForm
    change_user_password_template = "admin/accounts/change_password_with_reason.html"

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "is_staff")

    def has_delete_permission(self, request, obj=None):
        return False

    def after_related_saved(self, obj):
        sync_admin_access(obj)


admin.site.unregister(Group)


@admin.register(Group)
class RoleAdmin(NoDeleteAdminMixin, SecurityChangeAdminMixin, GroupAdmin):
    """Roles (groups) and their permissions: a new role or a change needs a reason, written to
    the security log with the permissions added and removed. The six study roles keep their
    names (``core.roles``: the access module asks for them by name); no role is deleted here
    (its members would lose it with no entry in the log)."""

    reason_on_add = True

    def get_readonly_fields(self, request, obj=None):
        fixed = ("name",) if obj is not None and obj.name in Role.values else ()
        return (*super().get_readonly_fields(request, obj), *fixed)


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class StudyTokenAdmin(StudyAdminMixin, TokenAdmin):
    """DRF's API token admin on the project's admin base (a bad id is a 404)."""


def _password_change(site, request, extra_context=None):
    """The admin's "Change password" page of the logged-in user: Django's view, with the form
    whose old password goes through the lockout (``forms.OwnPasswordChangeForm``)."""
    request.current_app = site.name
    return auth_views.PasswordChangeView.as_view(
        form_class=OwnPasswordChangeForm,
        success_url=reverse("admin:password_change_done", current_app=site.name),
        extra_context={**site.each_context(request), **(extra_context or {})},
        **(
            {"template_name": site.password_change_template}
            if site.password_change_template
            else {}
        ),
    )(request)


admin.site.password_change = types.MethodType(_password_change, admin.site)
