"""Admin pages of randomization.

* Lists, strata and slots (block sizes, future arms, the seed) are for statisticians and
  superusers only: every other user is refused, whatever Django permissions they hold.
* Allocations are read-only and scoped to the user's sites; they are made only through
  ``services.randomize`` (the subject page's "Randomize" action).
* The balance report is an admin page under the allocations (study team only).
"""

import io

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from core import access
from core.admin import ReadOnlyAuditedAdmin

from . import selectors, services
from .models import Allocation, RandomizationList, Slot, Stratum


class StatisticianOnlyAdmin(ReadOnlyAuditedAdmin):
    """Concealed material: statisticians and superusers only."""

    def _allowed(self, request) -> bool:
        return access.is_statistician(request.user)

    def has_module_permission(self, request):
        return self._allowed(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request) and super().has_view_permission(request, obj)

    def get_queryset(self, request):
        if not self._allowed(request):  # (and no site scoping: these rows belong to no site)
            return self.model._default_manager.none()
        return super().get_queryset(request)

    def history_view(self, request, object_id, extra_context=None):
        if not self._allowed(request):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if not self._allowed(request):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


@admin.register(RandomizationList)
class RandomizationListAdmin(StatisticianOnlyAdmin):
    list_display = (
        "id",
        "active",
        "seed",
        "slots_per_stratum",
        "block_sizes",
        "generated_at",
        "generated_by_name",
        "tools",
    )
    fields = (
        "active",
        "seed",
        "slots_per_stratum",
        "block_sizes",
        "algorithm",
        "checksum",
        "generated_at",
        "generated_by",
        "generated_by_name",
    )
    admin_views = (
        ("<int:pk>/csv/", "csv_view", "csv"),
        ("<int:pk>/verify/", "verify_view", "verify"),
    )

    @admin.display(description="Statistician tools")
    def tools(self, obj):
        return format_html(
            '<a href="{}">Download CSV</a> · <a href="{}">Verify against seed</a>',
            reverse("admin:randomization_randomizationlist_csv", args=[obj.pk]),
            reverse("admin:randomization_randomizationlist_verify", args=[obj.pk]),
        )

    def _list_for(self, request, pk) -> RandomizationList:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return get_object_or_404(RandomizationList, pk=pk)

    def csv_view(self, request, pk):
        rlist = self._list_for(request, pk)
        buffer = io.StringIO()
        services.write_list_csv(rlist, buffer)
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="randomization-list-{rlist.pk}-seed-{rlist.seed}.csv"'
        )
        return response

    def verify_view(self, request, pk):
        rlist = self._list_for(request, pk)
        result = services.verify_randomization_list(rlist)
        self.message_user(
            request, result.message, level=messages.SUCCESS if result.ok else messages.ERROR
        )
        return redirect("admin:randomization_randomizationlist_changelist")


@admin.register(Stratum)
class StratumAdmin(StatisticianOnlyAdmin):
    list_display = ("code", "rlist", "label", "slot_count", "free_slots")
    list_filter = ("rlist",)
    fields = (
        "rlist",
        "number",
        "macrovascular_or_extrahepatic",
        "ecog",
        "prior_locoregional_therapy",
        "slot_count",
    )

    @admin.display(description="Free slots")
    def free_slots(self, obj):
        return obj.slots.filter(allocation__isnull=True).count()


@admin.register(Slot)
class SlotAdmin(StatisticianOnlyAdmin):
    list_display = (
        "randomization_number",
        "stratum",
        "sequence",
        "block_number",
        "block_size",
        "arm",
        "allocated_to",
    )
    list_filter = ("rlist", "stratum__number", "arm")
    list_select_related = ("stratum", "allocation__subject")
    search_fields = ("randomization_number",)
    fields = (
        "rlist",
        "stratum",
        "sequence",
        "randomization_number",
        "block_number",
        "block_size",
        "arm",
    )

    @admin.display(description="Allocated to")
    def allocated_to(self, obj):
        allocation = getattr(obj, "allocation", None)
        return allocation.subject.subject_identifier if allocation else "—"


@admin.register(Allocation)
class AllocationAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "randomization_number",
        "subject",
        "site",
        "arm",
        "stratum_used",
        "allocated_at",
        "allocated_by",
        "crf_now",
    )
    list_filter = ("arm",)
    list_select_related = ("subject__site", "subject__eligibility", "allocated_by")
    search_fields = ("subject__subject_identifier", "randomization_number")
    date_hierarchy = "allocated_at"
    # Never the slot (its block): only what the site may know.
    fields = (
        "subject",
        "randomization_number",
        "arm",
        "allocated_at",
        "allocated_by",
        "macrovascular_or_extrahepatic",
        "ecog",
        "prior_locoregional_therapy",
    )
    admin_views = (("balance/", "balance_view", "balance"),)

    @admin.display(description="Site", ordering="subject__site__code")
    def site(self, obj):
        return obj.subject.site.code

    @admin.display(description="Stratum (values used)")
    def stratum_used(self, obj):
        return obj.stratum_label

    @admin.display(description="CRF now")
    def crf_now(self, obj):
        mismatch = selectors.crf_mismatch(obj)  # the list reads subject__eligibility with it
        return format_html("<strong>differs:</strong> {}", mismatch) if mismatch else "same"

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_see_balance": access.can_read_exports(request.user),
        }
        return super().changelist_view(request, extra_context)

    def balance_view(self, request):
        if not access.can_read_exports(request.user):
            raise PermissionDenied
        report = selectors.balance_report(request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": "Randomization balance report",
            "opts": self.model._meta,
            "report": report,
        }
        return TemplateResponse(request, "admin/randomization/balance.html", context)
