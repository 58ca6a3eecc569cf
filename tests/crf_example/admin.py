from django.contrib import admin

from core.admin import ReadOnlyAuditedAdmin

from .models import VitalSigns
from .services import FIELDS


@admin.register(VitalSigns)
class VitalSignsAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", *FIELDS)
    list_filter = (("subject__site", admin.RelatedOnlyFieldListFilter), "position")
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject__site",)
    fields = ("subject", *FIELDS)
