"""Monitoring records in the admin: read only, with their history. Verifications, freeze/lock
states and casebook signatures are made on the site's pages (the SDV worklist, the lock console,
the subject page) through ``services``; the admin shows them to data managers."""

from django.contrib import admin

from core.admin import ReadOnlyAuditedAdmin

from .models import CasebookSignature, CasebookState, RecordState, SourceDataVerification, StudyLock


@admin.register(SourceDataVerification)
class SourceDataVerificationAdmin(ReadOnlyAuditedAdmin):
    list_display = ("record_label", "verified", "verified_by", "verified_at", "cleared_at")
    list_filter = ("verified", "subject__site")
    search_fields = ("record_label", "subject__subject_identifier")
    list_select_related = ("verified_by",)


@admin.register(RecordState)
class RecordStateAdmin(ReadOnlyAuditedAdmin):
    list_display = ("record_label", "state", "changed_by", "changed_at", "reason")
    list_filter = ("state", "subject__site")
    search_fields = ("record_label", "subject__subject_identifier")
    list_select_related = ("changed_by",)


@admin.register(CasebookState)
class CasebookStateAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "state", "changed_by", "changed_at", "reason")
    list_filter = ("state", "subject__site")
    search_fields = ("subject__subject_identifier",)
    list_select_related = ("subject", "changed_by")


@admin.register(CasebookSignature)
class CasebookSignatureAdmin(ReadOnlyAuditedAdmin):
    list_display = ("subject", "signer_name", "signed_at", "void", "voided_at")
    list_filter = ("void", "subject__site")
    search_fields = ("subject__subject_identifier", "signer_name")
    list_select_related = ("subject",)


@admin.register(StudyLock)
class StudyLockAdmin(ReadOnlyAuditedAdmin):
    list_display = ("__str__", "changed_by", "changed_at", "reason")
