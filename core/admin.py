"""Admin building blocks shared by every app: site scoping and a reason for every change.

Who gets in: the admin is the data managers' tool. The admin site asks ``access.may_use_admin``
(data managers, statisticians, superusers) on every page and at its login, whatever ``is_staff``
says: site staff, investigators, monitors and the sponsor work in the site app only.
"""

import types
from typing import TYPE_CHECKING, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.utils import flatten_fieldsets, get_fields_from_path, unquote
from django.contrib.contenttypes.models import ContentType
from django.contrib.contenttypes.views import shortcut as contenttypes_shortcut
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied, ValidationError
from django.core.paginator import EmptyPage, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import Http404, HttpResponseRedirect
from django.urls import path
from django.utils.functional import cached_property
from simple_history.admin import SimpleHistoryAdmin

from . import access
from .audit import require_visible_reason
from .errors import DomainError
from .forms import ModelErrorsOnFormMixin

#: The one answer for a record that does not exist, is not at the user's sites, or whose id is
#: not even an id: the three cannot be told apart.
NOT_FOUND = "No such record at your sites."


def key_or_404(model, object_id):
    """The primary key an admin URL names (``unquote``d and typed), or a 404: ``abc`` where a
    number is expected is a page that does not exist, never a 500."""
    try:
        return model._meta.pk.to_python(unquote(str(object_id)))
    except (ValidationError, ValueError, TypeError, OverflowError):
        raise Http404(NOT_FOUND) from None


def with_model_errors(form_class):
    """``form_class``, putting a model error on a field the form does not have (``clean()``
    names ``consent_date``, shown read-only) on the form as a whole (``ModelErrorsOnFormMixin``),
    where Django would raise ``ValueError`` (a 500)."""
    if issubclass(form_class, ModelErrorsOnFormMixin):
        return form_class
    return type(form_class.__name__, (ModelErrorsOnFormMixin, form_class), {})


# The mixins below go before a ModelAdmin class; the type checker reads them as one.
if TYPE_CHECKING:
    _ModelAdminBase = admin.ModelAdmin
else:
    _ModelAdminBase = object


def searches_direct_identifier(search_field: str) -> bool:
    """Does an admin ``search_fields`` entry (``^subject__screening_number__iexact``) search a
    direct identifier (``access.DIRECT_IDENTIFIER_FIELDS``)?"""
    return any(
        part in access.DIRECT_IDENTIFIER_FIELDS for part in search_field.lstrip("^=@").split("__")
    )


# Above this many rows (PostgreSQL's estimate), an unfiltered changelist counts by the estimate.
ESTIMATED_COUNT_ABOVE = 10_000


class StudyPaginator(Paginator):
    """The admin's paginator: an unfiltered list of a big table is counted from PostgreSQL's
    estimate of the table's rows (``pg_class.reltuples``, kept by ANALYZE and autovacuum), not
    by ``COUNT(*)``, which reads the whole table on every page; a filtered or searched list, or
    a table estimated under ``ESTIMATED_COUNT_ABOVE`` rows, is counted exactly. Either way one
    query. A page past the end of an estimate is an empty page, not an error."""

    @cached_property
    def _whole_table(self) -> bool:
        """Is the list a whole table on PostgreSQL (no filter, distinct or grouping)?"""
        query = getattr(self.object_list, "query", None)
        if query is None or query.where or query.distinct or query.group_by:
            return False
        if query.combinator or query.is_sliced:
            return False
        return connections[self._queryset.db].vendor == "postgresql"

    @property
    def _queryset(self) -> QuerySet:
        return cast(QuerySet, self.object_list)

    @cached_property
    def count(self) -> int:
        if not self._whole_table:
            return super().count
        table = self._queryset.model._meta.db_table
        with connections[self._queryset.db].cursor() as cursor:
            cursor.execute(
                "SELECT CASE WHEN reltuples > %s THEN reltuples::bigint"
                f" ELSE (SELECT COUNT(*) FROM {connection_quote(table)}) END"
                " FROM pg_class WHERE oid = to_regclass(%s)",
                [ESTIMATED_COUNT_ABOVE, connection_quote(table)],
            )
            row = cursor.fetchone()
        return int(row[0]) if row else super().count

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if not self._whole_table:
                raise
            return int(number)


def connection_quote(table: str) -> str:
    return '"' + table.replace('"', '""') + '"'


def indexed_subject_order(ordering) -> list[str]:
    """``ordering`` with the casebook order by site code then sequence (``crf.SUBJECT_ORDER``)
    replaced by the subject identifier (``<site code>-<sequence>``, the sequence 4 digits): the
    same order, read down the identifier's unique index instead of sorting the whole table
    joined to its sites. (Under a linguistic collation, which weighs the hyphen less than a
    character, a site code that begins another one may interleave their subjects; the C
    collation keeps it exact.)"""
    ordering = list(ordering or ())
    result: list[str] = []
    i = 0
    while i < len(ordering):
        entry = ordering[i]
        prefix = entry[: -len("site__code")] if entry.endswith("site__code") else None
        if prefix is not None and i + 1 < len(ordering) and ordering[i + 1] == f"{prefix}sequence":
            result.append(f"{prefix}subject_identifier")
            i += 2
            continue
        result.append(entry)
        i += 1
    return result


class VisibleSiteFilter(admin.RelatedFieldListFilter):
    """A filter on the site: the sites the user sees (``access.scope_to_user``), read from the
    sites' table rather than from the distinct sites of every record listed."""

    def field_choices(self, field, request, model_admin):
        sites = access.scope_to_user(field.related_model._default_manager.all(), request.user)
        return [(site.pk, str(site)) for site in sites]


class StudyAdminMixin(_ModelAdminBase):
    """The base of every admin page of the project (audited or not: users, roles, the security
    log): a model error on a field the form lacks is shown on the form; a history page of an id
    that is not one, or of a record the user does not see, is a 404.

    ``admin_views``: the pages of the model's admin beyond Django's (a report, a download), as
    (route, view method, name): each behind the admin site's login and ``may_use_admin``, and
    named as Django names its own (``admin:<app>_<model>_<name>``)."""

    admin_views: tuple[tuple[str, str, str], ...] = ()
    # A changelist's work follows its page, not its table: no second count of the whole table
    # beside a filtered one, an estimated count of a big unfiltered one, the casebook order down
    # the subject identifier's index.
    show_full_result_count = False
    paginator = StudyPaginator
    # A page's rendering costs about a millisecond a row (Django's cell by cell): 25 rows keep a
    # page of a 10,000-subject study within twice the demo's (whose lists fill less than a page).
    list_per_page = 25

    def get_ordering(self, request):
        return indexed_subject_order(super().get_ordering(request) or self.model._meta.ordering)

    def get_urls(self):
        opts = self.model._meta
        return [
            *(
                path(
                    route,
                    self.admin_site.admin_view(getattr(self, view)),
                    name=f"{opts.app_label}_{opts.model_name}_{name}",
                )
                for route, view, name in self.admin_views
            ),
            *super().get_urls(),
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        return with_model_errors(super().get_form(request, obj, change=change, **kwargs))

    def get_search_fields(self, request):
        """No search by a direct identifier (``subject__screening_number``) for the users who
        may not see them: a match would tell them whose identifier it is."""
        names = super().get_search_fields(request)
        if access.sees_direct_identifiers(request.user):
            return names
        return type(names)(n for n in names if not searches_direct_identifier(n))

    def _require_visible(self, request, object_id):
        # ``get_object``: the admin's (scoped) list, the id typed (``abc``: None), and an admin's
        # own mapping of ids (the token admin's are user ids).
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404(NOT_FOUND)

    def history_view(self, request, object_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)


class ScopedAdminMixin(_ModelAdminBase):
    """Each admin page lists and offers only the records of the user's sites, and offers a change
    form for a record only to a user the access module lets change it."""

    #: The ``core.access`` question that decides, record by record, whether the user may change
    #: it here; ``None``: the model permission alone (a data manager's sites and memberships).
    change_question: str | None = None

    def get_queryset(self, request):
        return access.scope_to_user(super().get_queryset(request), request.user)

    def has_change_permission(self, request, obj=None):
        allowed = super().has_change_permission(request, obj)
        if allowed and obj is not None and self.change_question:
            return getattr(access, self.change_question)(request.user, obj)
        return allowed

    def get_list_filter(self, request):
        """A filter on a site offers the user's sites (``VisibleSiteFilter``), one on a subject
        only the values of the visible records: Django's plain related filter would list every
        site of the study."""
        return [self._scoped_filter(entry) for entry in super().get_list_filter(request)]

    def _scoped_filter(self, entry):
        if isinstance(entry, tuple) and entry[1] is admin.RelatedOnlyFieldListFilter:
            entry = entry[0]  # scoped here: the sites' filter is ``VisibleSiteFilter``
        if not isinstance(entry, str):
            return entry
        field = get_fields_from_path(self.model, entry)[-1]
        related = getattr(field, "related_model", None)
        if getattr(related, "site_lookup", None) == "pk":  # the sites themselves
            return (entry, VisibleSiteFilter)
        if hasattr(related, "site_lookup"):
            return (entry, admin.RelatedOnlyFieldListFilter)
        return entry

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if hasattr(related, "site_lookup"):
            kwargs["queryset"] = access.scope_to_user(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReasonForChangeAdminMixin(_ModelAdminBase):
    """Adds a required 'Reason for change' to the change form of an existing record (and to the
    add form too with ``reason_on_add``: a new role grants permissions).

    Subclasses save through their app's service in ``save_through_service(request, obj, form,
    change, reason)``; a domain error becomes a message on the form, never a 500.
    """

    reason_on_add = False

    def _asks_reason(self, request, obj) -> bool:
        if obj is None:
            return self.reason_on_add and self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        # The reason is a form field, not a model field: keep it out of the model form's fields.
        # (``fields=None`` is Django asking which fields the form has: pass that through.)
        if "fields" not in kwargs:
            kwargs["fields"] = flatten_fieldsets(self.get_fieldsets(request, obj))
        if kwargs["fields"]:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != "change_reason"]
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is None and not self.reason_on_add:
            return form
        reason = forms.CharField(
            label="Reason for change",
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text="Required: recorded in the audit trail with your name and the time.",
            validators=[require_visible_reason],
        )
        return type("WithReason", (form,), {"change_reason": reason})

    def get_fields(self, request, obj=None):
        fields = list(super().get_fields(request, obj))
        if self._asks_reason(request, obj) and "change_reason" not in fields:
            fields.append("change_reason")
        return fields

    def get_fieldsets(self, request, obj=None):
        """Declared fieldsets (the user admin's) get the reason as a last section."""
        fieldsets = list(super().get_fieldsets(request, obj))
        if self._asks_reason(request, obj) and "change_reason" not in flatten_fieldsets(fieldsets):
            fieldsets.append(("Reason for change", {"fields": ["change_reason"]}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("change_reason", "") if change or self.reason_on_add else ""
        self.save_through_service(request, obj, form, change, reason)

    def save_through_service(self, request, obj, form, change, reason):
        raise NotImplementedError

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (DomainError, ValidationError) as exc:
            text = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
            self.message_user(request, f"Not saved: {text}", level=messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class NoDeleteAdminMixin(_ModelAdminBase):
    """Audited records are not deleted from the admin (services delete, with a reason)."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyHistoryAdminMixin(StudyAdminMixin):
    """History pages are read-only and scoped like the records themselves.

    simple-history's own views would accept a POST on a past version (a revert) and fall back to
    a deleted object's history without asking whether the user may see its site. An id or a
    version that is not a number is a 404 like any record the user does not see.
    """

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_visible(request, object_id)
        key_or_404(self.model.history.model, version_id)
        if request.method != "GET":
            raise PermissionDenied("The audit trail is read-only.")
        # simple-history's SimpleHistoryAdmin (after this mixin) has no type information.
        return super().history_form_view(  # type: ignore[misc]
            request, object_id, version_id, extra_context
        )


class AuditedAdmin(
    ReadOnlyHistoryAdminMixin,
    NoDeleteAdminMixin,
    ReasonForChangeAdminMixin,
    ScopedAdminMixin,
    SimpleHistoryAdmin,
):
    """The base of every admin page on an audited model."""

    history_list_display = ["history_change_reason"]


admin.site.site_header = "mini-EDC: toripalimab + bevacizumab vs sorafenib (HCC, phase III)"
admin.site.site_title = "mini-EDC admin"
admin.site.index_title = "Study administration"


def _admin_site_has_permission(site, request) -> bool:
    """Every admin page (and the admin's "already logged in" check) asks the access module:
    an active staff account that ``access.may_use_admin`` lets in; others go to the login page."""
    user = request.user
    return bool(user.is_active and user.is_staff and access.may_use_admin(user))


class StudyAdminAuthenticationForm(AdminAuthenticationForm):
    """The admin login refuses an account the access module keeps out of the admin, even one
    whose ``is_staff`` is set: it is not logged in at all."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not access.may_use_admin(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


def _visible_in_admin(request, model):
    """The records of ``model`` the user sees in the admin: its admin page's (scoped) list when
    the user may view it there; else, for a record of a site, those of the user's sites."""
    if admin.site.is_registered(model):
        model_admin = admin.site.get_model_admin(model)
        if not model_admin.has_view_or_change_permission(request):
            return model._default_manager.none()
        return model_admin.get_queryset(request)
    if hasattr(model, "site_lookup"):
        return access.scope_to_user(model._default_manager.all(), request.user)
    return model._default_manager.none()


def view_on_site(request, content_type_id, object_id):
    """The admin's "View on site" shortcut (``/admin/r/<content type>/<id>/``), scoped: a record
    the user does not see in the admin (another site's subject or eligibility CRF) is a 404, the
    same as one that does not exist or an id that is not one; only then Django's redirect to the
    record's page."""
    try:
        content_type = ContentType.objects.get_for_id(int(content_type_id))
    except (ValueError, OverflowError, ObjectDoesNotExist):
        raise Http404(NOT_FOUND) from None
    model = content_type.model_class()
    if model is None:
        raise Http404(NOT_FOUND)
    key = key_or_404(model, object_id)
    if not _visible_in_admin(request, model).filter(pk=key).exists():
        raise Http404(NOT_FOUND)
    return contenttypes_shortcut(request, content_type_id, object_id)


def _admin_site_urls(site):
    """Django's admin URLs, with its "view on site" shortcut replaced by the scoped one."""
    return [
        path(
            "r/<path:content_type_id>/<path:object_id>/",
            site.admin_view(view_on_site),
            name="view_on_site",
        )
        if getattr(pattern, "name", None) == "view_on_site"
        else pattern
        for pattern in _django_admin_urls()
    ]


# The one admin site every app registers on, changed in place (a method set on the instance).
admin.site.has_permission = types.MethodType(_admin_site_has_permission, admin.site)  # type: ignore[method-assign]
admin.site.login_form = StudyAdminAuthenticationForm
_django_admin_urls = admin.site.get_urls
admin.site.get_urls = types.MethodType(_admin_site_urls, admin.site)  # type: ignore[method-assign]


class ReadOnlyAuditedAdmin(AuditedAdmin):
    """Records nobody adds or changes in the admin: services and commands write them."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def save_through_service(self, request, obj, form, change, reason):
        raise PermissionDenied("Read-only.")


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their record's page (an AE's causality, a cycle's doses): the services write
    them with their record, so the admin shows every field and neither adds, changes nor deletes
    one."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields or ()

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
