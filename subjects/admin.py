from django.contrib import admin

from core import access
from core.admin import AuditedAdmin

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


@admin.register(Subject)
class SubjectAdmin(AuditedAdmin):
    change_question = "can_enter_data"
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
        fields = super().get_fields(request, obj)
        if access.sees_direct_identifiers(request.user):
            return fields
        return [f for f in fields if f not in access.DIRECT_IDENTIFIER_FIELDS]

    def lookup_allowed(self, lookup, value, request):
        """No filtering by a direct identifier (``?date_of_birth__year=``) for the sponsor."""
        field = lookup.split("__")[0]
        if field in access.DIRECT_IDENTIFIER_FIELDS and not access.sees_direct_identifiers(
            request.user
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("subject_identifier", "status", "status_date")
        return self.readonly_fields + ("site",)

    def save_through_service(self, request, obj, form, change, reason):
        data = {f: form.cleaned_data.get(f) for f in services.DEMOGRAPHIC_FIELDS}
        if change:
            changed = {f: v for f, v in data.items() if f in form.changed_data}
            services.update_demographics(obj, user=request.user, reason=reason, **changed)
            return
        created = services.register_subject(
            site=form.cleaned_data["site"],
            user=request.user,
            **{**data, "initials": data["initials"] or ""},
        )
        obj.pk = created.pk
        obj.subject_identifier = created.subject_identifier
        obj._state.adding = False
