"""Admin for data managers and monitors: review data queries with filters (status, site, edit
check, severity, age), their thread and history; close, confirm correct, reopen or cancel many at
once; raise the same query on many subjects (bulk raise).

Read-only for field edits: every transition goes through ``queries.services`` (who may make it is
asked there, through ``core.access``); a refusal is reported per query, never a 500. Scoped to
the user's sites like every admin page. Sponsor people never see a date of birth or initials in
the offending values.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html

from core import access
from core.admin import ReadOnlyAuditedAdmin, ReadOnlyInline
from core.errors import DomainError
from subjects.models import Site, Subject

from . import selectors, services
from .checks import checks_by_code
from .models import UNRESOLVED, DataQuery, QueryMessage, Resolution


def age_in_days(query: DataQuery) -> int:
    """Days a query has been open (UTC calendar days): until today while unresolved, until its
    closing otherwise."""
    end = timezone.localdate(query.closed_at) if query.closed_at else timezone.localdate()
    return (end - timezone.localdate(query.opened_at)).days


def _start_of(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def raise_site_ids(user) -> set[int]:
    """The visible sites where ``user`` may raise, close, reopen and cancel queries."""
    sites = access.scope_to_user(Site.objects.all(), user)
    return {site.pk for site in sites if access.can_raise_query(user, site)}


# --- filters -------------------------------------------------------------------------------------


class AgeBucketFilter(admin.SimpleListFilter):
    """Unresolved queries by days since opened (UTC calendar days)."""

    title = "age of unresolved queries"
    parameter_name = "age"
    BUCKETS = {"0-7": (0, 7), "8-30": (8, 30), "31-": (31, None)}

    def lookups(self, request, model_admin):
        return [("0-7", "0–7 days"), ("8-30", "8–30 days"), ("31-", "more than 30 days")]

    def queryset(self, request, queryset):
        bucket = self.BUCKETS.get(self.value())
        if bucket is None:
            return queryset
        youngest, oldest = bucket
        today = timezone.localdate()
        queryset = queryset.filter(
            status__in=UNRESOLVED, opened_at__lt=_start_of(today - timedelta(days=youngest - 1))
        )
        if oldest is not None:
            queryset = queryset.filter(opened_at__gte=_start_of(today - timedelta(days=oldest)))
        return queryset


class CheckFilter(admin.SimpleListFilter):
    """The edit checks of the visible queries, and the queries raised by hand."""

    title = "edit check"
    parameter_name = "check"
    MANUAL = "manual"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .exclude(check_code="")
            .order_by("check_code")
            .values_list("check_code", flat=True)
            .distinct()
        )
        found = []
        for code in codes:
            check = checks_by_code().get(code)
            found.append((code, f"{code} {check.title}" if check else code))
        return [*found, (self.MANUAL, "Raised by hand")]

    def queryset(self, request, queryset):
        if self.value() == self.MANUAL:
            return queryset.filter(check_code="")
        if self.value():
            return queryset.filter(check_code=self.value())
        return queryset


# --- the thread ----------------------------------------------------------------------------------


class ThreadInline(ReadOnlyInline):
    model = QueryMessage
    verbose_name = "message"
    verbose_name_plural = "thread"
    fields = ("at", "kind", "author", "text", "response_reason")
    ordering = ("at", "pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


# --- actions: one text, one service call per query -----------------------------------------------


@dataclass(frozen=True)
class Transition:
    name: str  # the admin action's name
    verb: str  # "Close"
    done: str  # "closed"
    text_label: str
    apply: Callable  # (query, user, text) -> query


TRANSITIONS = {
    t.name: t
    for t in (
        Transition(
            "close_queries",
            "Close",
            "closed",
            "Reason for closing",
            lambda q, user, text: services.close_query(q, user=user, text=text),
        ),
        Transition(
            "close_confirmed_correct",
            "Close as confirmed correct",
            "closed as confirmed correct",
            "Why the data are correct as they are",
            lambda q, user, text: services.close_query(
                q, user=user, text=text, confirmed_correct=True
            ),
        ),
        Transition(
            "reopen_queries",
            "Reopen",
            "reopened",
            "Reason for reopening (the site reads it)",
            lambda q, user, text: services.reopen_query(q, user=user, text=text),
        ),
        Transition(
            "cancel_queries",
            "Cancel",
            "cancelled",
            "Reason for cancelling (raised in error)",
            lambda q, user, text: services.cancel_query(q, user=user, text=text),
        ),
    )
}


class ActionTextForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required: written to each query's thread and to the audit trail with your name.",
    )

    def __init__(self, *args, label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["text"].label = label


def _refusal(query: DataQuery, exc: Exception) -> str:
    text = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
    prefix = f"Query {query.pk} "
    return text if text.startswith(prefix) else f"Query {query.pk}: {text}"


# --- bulk raise ----------------------------------------------------------------------------------

WHOLE_RECORD = ""


def _model_label(model) -> str:
    return model._meta.label_lower


class SubjectChoices(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return f"{obj.subject_identifier} ({obj.get_status_display().lower()})"


class BulkRaiseForm(forms.Form):
    """The same manual query on one record of many subjects: the record (a CRF each subject has
    once), the field, the question, and the subjects (of the sites where the user may raise)."""

    model = forms.ChoiceField(label="Record")
    field = forms.ChoiceField(label="Field", required=False)
    message = forms.CharField(
        label="Question to the site", widget=forms.Textarea(attrs={"rows": 3, "cols": 80})
    )
    subjects = SubjectChoices(
        queryset=Subject.objects.none(),
        widget=FilteredSelectMultiple("subjects", is_stacked=False),
    )

    def __init__(self, *args, raise_site_ids, model_label: str, site_id=None, **kwargs):
        super().__init__(*args, **kwargs)
        models_ = {_model_label(m): m for m in services.per_subject_models()}
        self.fields["model"].choices = [
            (label, str(m._meta.verbose_name).capitalize()) for label, m in models_.items()
        ]
        self.chosen_model = models_.get(model_label) or next(iter(models_.values()))
        self.fields["field"].choices = [
            (WHOLE_RECORD, "(the whole record)"),
            *(
                (f.name, f"{str(f.verbose_name).capitalize()} ({f.name})")
                for f in services.queryable_fields(self.chosen_model)
            ),
        ]
        subjects = Subject.objects.filter(site_id__in=raise_site_ids).select_related("site")
        if site_id is not None:
            subjects = subjects.filter(site_id=site_id)
        self.fields["subjects"].queryset = subjects.order_by("subject_identifier")

    def clean_model(self):
        label = self.cleaned_data["model"]
        if label != _model_label(self.chosen_model):
            raise ValidationError("Choose the record again: its fields were not shown.")
        return self.chosen_model


# --- the admin -----------------------------------------------------------------------------------


@admin.register(DataQuery)
class DataQueryAdmin(ReadOnlyAuditedAdmin):
    list_display = (
        "number",
        "subject",
        "site",
        "check_display",
        "record_field",
        "status",
        "severity",
        "age_display",
        "opened_at",
    )
    list_display_links = ("number", "subject")
    list_filter = ("status", "site", CheckFilter, "severity", AgeBucketFilter)
    search_fields = ("subject__subject_identifier", "message")
    list_select_related = ("subject", "site", "content_type")
    inlines = [ThreadInline]
    actions = list(TRANSITIONS)
    admin_views = (("bulk-raise/", "bulk_raise_view", "bulk_raise"),)
    fieldsets = [
        (
            None,
            {
                "fields": (
                    "subject",
                    "site",
                    "record_link",
                    "field_display",
                    "check_display",
                    "severity",
                    "raised_by",
                    "message",
                    "offending_values",
                )
            },
        ),
        ("Status", {"fields": ("status", "resolution", "opened_at", "closed_at", "age_display")}),
    ]

    # --- columns and fields

    @admin.display(description="Query", ordering="pk")
    def number(self, obj):
        return obj.pk

    @admin.display(description="Check", ordering="check_code")
    def check_display(self, obj):
        return obj.check_code or "manual"

    @admin.display(description="Record / field", ordering="record_label")
    def record_field(self, obj):
        return f"{obj.record_label}{obj.field_suffix}"

    @admin.display(description="Age (days)")
    def age_display(self, obj):
        return age_in_days(obj)

    @admin.display(description="Field")
    def field_display(self, obj):
        return f"{obj.field_label} ({obj.field})" if obj.field else "(the whole record)"

    @admin.display(description="Record")
    def record_link(self, obj):
        model = obj.content_type.model_class()
        label = obj.record_label
        if model is None:
            return label
        try:
            url = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change",
                args=[obj.object_id],
            )
        except NoReverseMatch:
            return label
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.display(description="Offending values")
    def offending_values(self, obj):
        # The viewer is set on the object by get_fieldsets (None: shown as to the sponsor).
        values = selectors.shown_snapshot(obj, getattr(obj, "_edc_viewer", None))
        if not values:
            return "—"
        return format_html("<pre>{}</pre>", json.dumps(values, indent=2, sort_keys=True))

    def view_on_site(self, obj):
        try:
            return obj.get_absolute_url()
        except NoReverseMatch:  # the site pages of the queries are not there: no link
            return None

    def get_fieldsets(self, request, obj=None):
        if obj is not None:  # the change page and a history version: who reads the values
            obj._edc_viewer = request.user
        return super().get_fieldsets(request, obj)

    def get_readonly_fields(self, request, obj=None):
        """Everything: a history version shows no input either (transitions are actions)."""
        return flatten_fieldsets(self.fieldsets)

    # --- who may use the actions and the bulk raise

    def _raise_site_ids(self, request) -> set[int]:
        """The sites where the user may raise and close queries (asked once per request)."""
        if not hasattr(request, "_edc_raise_site_ids"):
            request._edc_raise_site_ids = raise_site_ids(request.user)
        return request._edc_raise_site_ids

    def has_raise_query_permission(self, request) -> bool:
        """The actions and the bulk raise: for users who may raise queries at one site at least
        (the services ask again for each query and subject)."""
        return self.has_view_permission(request) and bool(self._raise_site_ids(request))

    @admin.action(description="Close the selected queries…", permissions=["raise_query"])
    def close_queries(self, request, queryset):
        return self._transition(request, queryset, TRANSITIONS["close_queries"])

    @admin.action(
        description="Close the selected queries as confirmed correct…",
        permissions=["raise_query"],
    )
    def close_confirmed_correct(self, request, queryset):
        return self._transition(request, queryset, TRANSITIONS["close_confirmed_correct"])

    @admin.action(description="Reopen the selected queries…", permissions=["raise_query"])
    def reopen_queries(self, request, queryset):
        return self._transition(request, queryset, TRANSITIONS["reopen_queries"])

    @admin.action(description="Cancel the selected queries…", permissions=["raise_query"])
    def cancel_queries(self, request, queryset):
        return self._transition(request, queryset, TRANSITIONS["cancel_queries"])

    def _transition(self, request, queryset, transition: Transition):
        """First the page asking the text; then the service on each selected query, each success
        and each refusal reported."""
        queries = list(queryset.select_related("subject__site", "content_type").order_by("pk"))
        if not queries:
            self.message_user(request, "None of the selected queries is at your sites.")
            return None
        form = ActionTextForm(
            request.POST if "apply" in request.POST else None, label=transition.text_label
        )
        if not form.is_valid():
            return self._text_page(request, queries, transition, form)
        done, refused = [], []
        for query in queries:
            try:
                query = transition.apply(query, request.user, form.cleaned_data["text"])
            except (DomainError, ValidationError) as exc:
                refused.append(_refusal(query, exc))
                continue
            if query.resolution == Resolution.RESOLVED_BY_DATA_CHANGE:  # the data changed
                refused.append(f"Query {query.pk} was resolved by a data change meanwhile.")
            else:
                done.append(str(query.pk))
        if done:
            noun = "query" if len(done) == 1 else "queries"
            self.message_user(
                request,
                f"{transition.done.capitalize()} {len(done)} {noun}: {', '.join(done)}.",
                messages.SUCCESS,
            )
        for sentence in refused:
            self.message_user(request, f"Not {transition.done}: {sentence}", messages.ERROR)
        return None

    def _text_page(self, request, queries, transition: Transition, form):
        context = {
            **self.admin_site.each_context(request),
            "title": f"{transition.verb}: {len(queries)} selected data queries",
            "opts": self.model._meta,
            "queries": queries,
            "transition": transition,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "select_across": request.POST.get("select_across", "0"),
        }
        return TemplateResponse(request, "admin/queries/dataquery/action_text.html", context)

    # --- bulk raise

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_bulk_raise": self.has_raise_query_permission(request),
        }
        return super().changelist_view(request, extra_context)

    def bulk_raise_view(self, request):
        if not self.has_raise_query_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        sites = Site.objects.filter(pk__in=self._raise_site_ids(request)).order_by("code")
        site = sites.filter(pk=_int_or_none(source.get("site"))).first()
        form = BulkRaiseForm(
            request.POST if request.method == "POST" else None,
            raise_site_ids=self._raise_site_ids(request),
            model_label=source.get("model", ""),
            site_id=site.pk if site else None,
        )
        if request.method == "POST" and form.is_valid():
            response = self._bulk_raise(request, form)
            if response is not None:
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Raise the same query on many subjects",
            "opts": self.model._meta,
            "form": form,
            "media": self.media + form.media,
            "sites": sites,
            "site": site,
            "models": form.fields["model"].choices,
            "chosen_model": _model_label(form.chosen_model),
        }
        return TemplateResponse(request, "admin/queries/dataquery/bulk_raise.html", context)

    def _bulk_raise(self, request, form):
        data = form.cleaned_data
        model = data["model"]
        try:
            result = services.raise_bulk(
                data["subjects"],
                model=model,
                field=data["field"],
                message=data["message"],
                user=request.user,
            )
        except (DomainError, ValidationError) as exc:
            text = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
            form.add_error(None, text)
            return None
        if result.raised:
            self.message_user(
                request,
                f"Raised {len(result.raised)} "
                f"{'query' if len(result.raised) == 1 else 'queries'}: "
                + ", ".join(f"{q.subject.subject_identifier} (query {q.pk})" for q in result.raised)
                + ".",
                messages.SUCCESS,
            )
        if result.without_record:
            self.message_user(
                request,
                f"No {model._meta.verbose_name} yet, nothing raised: "
                + ", ".join(s.subject_identifier for s in result.without_record)
                + ".",
                messages.WARNING,
            )
        return redirect("admin:queries_dataquery_changelist")


def _int_or_none(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
