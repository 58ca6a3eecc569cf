from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from .models import AuthEvent
from .services import sync_admin_access

User = get_user_model()


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    """The security log: readable, never editable."""

    list_display = ("at", "kind", "username", "actor", "ip_address")
    list_filter = ("kind",)
    search_fields = ("username",)
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuthEvent._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.unregister(User)


@admin.register(User)
class StudyUserAdmin(UserAdmin):
    """Users are deactivated, never deleted: their names stand in the audit trail.

    "Staff status" (the admin) follows the user's roles: it is set after the groups are saved,
    never by hand (``services.sync_admin_access``)."""

    list_filter = ("is_active", "is_staff", "groups")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "is_staff")

    def has_delete_permission(self, request, obj=None):
        return False

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        sync_admin_access(form.instance)
