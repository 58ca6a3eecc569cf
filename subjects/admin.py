from django.contrib import admin

from edc.admin import AuditedAdmin

from . import services
from .models import Site, SiteMembership, Subject


@admin.register(Site)
class SiteAdmin(AuditedAdmin):
    list_display = ("code", "name", "country", "active")
    list_filter = ("active", "country")
    search_fields = ("code", "name")

    def save_through_service(self, request, obj, form, change, reason):
        from edc.audit import audited_save

        audited_save(obj, user=request.user, reason=reason)


@admin.register(SiteMembership)
class SiteMembershipAdmin(AuditedAdmin):
    list_display = ("user", "site", "role", "active")
    list_filter = ("role", "active", "site")
    search_fields = ("user__username", "user__last_name", "site__code")
    autocomplete_fields = ()

    def save_through_service(self, request, obj, form, change, reason):
        services.save_membership(obj, user=request.user, reason=reason)


@admin.register(Subject)
class SubjectAdmin(AuditedAdmin):
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
            screening_date=form.cleaned_data.get("screening_date"),
            **{**data, "initials": data["initials"] or ""},
        )
        obj.pk = created.pk
        obj.subject_identifier = created.subject_identifier
        obj._state.adding = False
