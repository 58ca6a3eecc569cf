from django.contrib import admin

from core import access
from core.admin import AuditedAdmin, ReadOnlyAuditedAdmin

from . import services
from .models import Site, SiteMembership, Subject


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ("code", "name", "country", "time_zone", "active")
    list_filter = ("active", "country", "time_zone")
    search_fields = ("code", "name")
    fields = ("code", "name", "country", "time_zone", "active")

    def get_readonly_fields(self, request, obj=None):
        # The code is part of every subject identifier of the site, which never changes.
        return ("code",) if obj is not None else ()

    def save_through_service(self, request, obj, form, change, reason):
        services.save_site(obj, user=request.user, reason=reason)


@admin.register(SiteMembership)
class SiteMembershipAdmin(AuditedAdmin):
    list_display = ("user", "site", "role", "active")
    list_filter = ("role", "active", "site")
    search_fields = ("user__username", "user__last_name", "site__code")

    def save_through_service(self, request, obj, form, change, reason):
        services.save_membership(obj, user=request.user, reason=reason)


def _without_identifiers(request, names):
    """``names`` (fields, columns, searched fields) without the direct identifiers, for the
    users who may not see them."""
    if access.sees_direct_identifiers(request.user):
        return names
    return type(names)(n for n in names if n not in access.DIRECT_IDENTIFIER_FIELDS)


@admin.register(Subject)
class SubjectAdmin(ReadOnlyAuditedAdmin):
    """Read-only, with its history: subjects are registered and changed on the site's pages by
    site staff and investigators, who do not use the admin (``access.may_use_admin``)."""

    list_display = (
        "subject_identifier",
        "site",
        "screening_number",
        "status",
        "consent_date",
        "screening_date",
    )
    list_filter = ("site", "status", "sex")
    search_fields = ("subject_identifier", "screening_number")
    list_select_related = ("site",)
    readonly_fields = (
        "subject_identifier",
        "status",
        "status_date",
        "consent_date",
        "consent_version",
    )

    def get_fields(self, request, obj=None):
        return _without_identifiers(request, super().get_fields(request, obj))

    def get_list_display(self, request):
        return _without_identifiers(request, super().get_list_display(request))

    def lookup_allowed(self, lookup, value, request):
        """No filtering by a direct identifier (``?date_of_birth__year=``) for the sponsor."""
        field = lookup.split("__")[0]
        if field in access.DIRECT_IDENTIFIER_FIELDS and not access.sees_direct_identifiers(
            request.user
        ):
            return False
        return super().lookup_allowed(lookup, value, request)
