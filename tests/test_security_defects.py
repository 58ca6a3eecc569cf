"""Issue 12's defects in the admin and the API, each proved fixed (a security and fault review).

* 2: the admin's "view on site" shortcut (``/admin/r/<content type>/<id>/``) asks the access
  module: another site's record is a 404, the same as one that does not exist.
* 3: a model error on a field the form does not have (``clean()`` names ``consent_date``, shown
  read-only) is an error on the form as a whole in every admin and web form, never a 500.
* 5: the date filters of the API (found in its OpenAPI schema) refuse an offset no place uses
  with a 400 and a sentence; an empty value of any list parameter is a 400 too.
* 7: a history page of an id that is not one (``/admin/subjects/subject/abc/history/``) is a
  404 for every admin model.
* 9: a change to a role's permissions or to a user in the admin needs a reason, and the
  security log records it with the reason.
"""

from __future__ import annotations

import importlib
import re
from datetime import timedelta

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.contrib.admin import AdminSite
from django.contrib.admin.utils import flatten_fieldsets
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import RequestFactory
from django.urls import path, reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import AuthEvent
from core import access
from core.admin import AuditedAdmin
from core.apps import ProjectAppConfig
from core.audit import audited_save
from core.errors import DomainError
from core.forms import ModelErrorsOnFormMixin, run_service
from core.roles import Role
from edc.urls import urlpatterns as project_urlpatterns
from exports import params, records
from exports.api import form_api
from subjects.models import Subject

from .builders import PASSWORD, days_ago, make_eligible_assessment, make_subject, make_user

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def superuser(db):
    return User.objects.create_superuser("root", "root@example.org", PASSWORD)


# --- 2: the admin's "view on site" shortcut --------------------------------------------------


@pytest.fixture
def site_scoped_admin_user(site, monkeypatch):
    """A monitor of site 101 whom the admin lets in. Today the admin is for study-wide people
    (``access.may_use_admin``), but the shortcut must not rest on that: before issue 11 site
    users reached it, and it sent them to another site's subjects."""
    monitor = make_user(Role.MONITOR, site, username="monitor101")
    User.objects.filter(pk=monitor.pk).update(is_staff=True)
    admits = access.may_use_admin
    monkeypatch.setattr(access, "may_use_admin", lambda user: admits(user) or user.pk == monitor.pk)
    return User.objects.get(pk=monitor.pk)


def shortcut_url(obj, pk=None) -> str:
    content_type = ContentType.objects.get_for_model(obj)
    return reverse("admin:view_on_site", args=[content_type.pk, obj.pk if pk is None else pk])


def test_view_on_site_is_a_404_for_another_sites_records_like_a_missing_one(
    client, site, other_site, site_scoped_admin_user
):
    mine = make_subject(site)
    theirs = make_subject(other_site)
    their_assessment = make_eligible_assessment(theirs, sign=False)
    client.force_login(site_scoped_admin_user)

    response = client.get(shortcut_url(mine))
    assert response.status_code == 302
    assert response["Location"].endswith(mine.get_absolute_url())

    missing_pk = Subject.objects.order_by("-pk").first().pk + 1000
    missing_url = shortcut_url(theirs, pk=missing_pk)
    missing = client.get(missing_url)
    assert missing.status_code == 404
    for obj in (theirs, their_assessment):
        url = shortcut_url(obj)
        refused = client.get(url)
        assert refused.status_code == 404, obj
        assert theirs.subject_identifier not in refused.text
        # Nothing tells "at another site" from "does not exist" (the page names its own path).
        assert page_text(refused, url) == page_text(missing, missing_url)


def page_text(response, url: str) -> str:
    """The page without its own address and its form token."""
    text = response.text.replace(url, "")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", text)


def test_view_on_site_with_ids_that_are_not_ids_is_a_404(client, subject, data_manager):
    client.force_login(data_manager)
    subject_type = ContentType.objects.get_for_model(Subject).pk
    assert client.get(shortcut_url(subject)).status_code == 302  # a study-wide data manager
    for content_type, object_id in [
        ("abc", subject.pk),
        (subject_type, "abc"),
        (subject_type, "9" * 30),
        ("9" * 30, subject.pk),
        (ContentType.objects.get_for_model(Group).pk, 1),  # no page of its own
    ]:
        url = reverse("admin:view_on_site", args=[content_type, object_id])
        assert client.get(url).status_code == 404, url


# --- 3: model errors on fields a form does not have ------------------------------------------


class DemographicsProbeAdmin(AuditedAdmin):
    """An admin form whose model's ``clean()`` may name a field it does not have: the date of
    birth is editable, the consent date shown read-only (as a coordinator's admin was before
    issue 11; no admin page of today's project edits a subject)."""

    fields = ("date_of_birth", "consent_date")
    readonly_fields = ("consent_date",)

    def save_through_service(self, request, obj, form, change, reason):
        audited_save(obj, user=request.user, reason=reason)


probe_site = AdminSite(name="probe_admin")
probe_site.register(Subject, DemographicsProbeAdmin)
urlpatterns = [path("probe-admin/", probe_site.urls), *project_urlpatterns]


@pytest.mark.urls(__name__)
def test_an_admin_form_shows_a_model_error_on_a_field_it_lacks_instead_of_a_500(
    client, site, superuser
):
    subject = make_subject(site, consent_date=days_ago(30), screening_date=days_ago(30))
    client.force_login(superuser)
    url = reverse("probe_admin:subjects_subject_change", args=[subject.pk])
    response = client.post(
        url, {"date_of_birth": days_ago(10).isoformat(), "change_reason": "Typo in the year"}
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert "The consent date is before the date of birth." in errors
    assert "The consent date is before the date of birth." in response.text
    subject.refresh_from_db()
    assert subject.date_of_birth.year == 1965


def admin_request(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def test_every_admin_form_puts_errors_of_fields_it_lacks_on_the_form(superuser, subject):
    """Every admin page, audited or not (users, roles, tokens, the security log): its add form
    and its change form, as the admin builds them."""
    request = admin_request(superuser)
    for model, model_admin in admin.site._registry.items():
        obj = model._default_manager.first() or model()
        fieldsets = model_admin.get_fieldsets(request, obj)
        form_classes = [
            model_admin.get_form(request, obj, change=True, fields=flatten_fieldsets(fieldsets))
        ]
        if model_admin.has_add_permission(request):
            fieldsets = model_admin.get_fieldsets(request, None)
            form_classes.append(
                model_admin.get_form(
                    request, None, change=False, fields=flatten_fieldsets(fieldsets)
                )
            )
        for form_class in form_classes:
            assert issubclass(form_class, ModelErrorsOnFormMixin), (model, form_class)
            form = form_class(data={})
            form.cleaned_data = {}
            form.add_error(None, ValidationError({"not_on_this_form": "Check the other field."}))
            assert "Check the other field." in form.non_field_errors(), model


def project_model_forms() -> list[type]:
    """Every ModelForm of the site's pages: the ``forms`` module of each project app."""
    found = []
    for config in apps.get_app_configs():
        if not isinstance(config, ProjectAppConfig):
            continue
        try:
            module = importlib.import_module(f"{config.name}.forms")
        except ModuleNotFoundError:
            continue
        found += [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, forms.BaseModelForm)
            and value.__module__ == module.__name__
            and getattr(value._meta, "model", None) is not None
        ]
    return found


def test_every_web_model_form_puts_model_errors_of_fields_it_lacks_on_the_form():
    model_forms = project_model_forms()
    assert len(model_forms) >= 3
    for form_class in model_forms:
        assert issubclass(form_class, ModelErrorsOnFormMixin), form_class


def test_run_service_puts_a_refusal_naming_a_field_the_form_lacks_on_the_form():
    class Form(forms.Form):
        initials = forms.CharField()

    for error, field_errors, form_errors in [
        (
            ValidationError(
                {"consent_date": "The consent date is before the date of birth.", "initials": "X"}
            ),
            ["X"],
            ["The consent date is before the date of birth."],
        ),
        (ValidationError("Not now."), [], ["Not now."]),
        (DomainError("The subject is randomized."), [], ["The subject is randomized."]),
    ]:
        form = Form({"initials": "AB"})
        assert form.is_valid()

        def refuse(error=error):
            raise error

        assert run_service(form, refuse) is None
        assert form.errors.get("initials", []) == field_errors
        assert form.non_field_errors() == form_errors


def test_the_web_demographics_form_shows_a_consent_date_error_on_the_form(
    client, site, coordinator
):
    subject = make_subject(site, by=coordinator, consent_date=days_ago(30))
    client.force_login(coordinator)
    response = client.post(
        reverse("subjects:edit", args=[subject.subject_identifier]),
        {
            "screening_number": subject.screening_number,
            "screening_date": subject.screening_date.isoformat(),
            "initials": "AB",
            "date_of_birth": days_ago(10).isoformat(),
            "sex": subject.sex,
            "reason": "Typo in the year",
        },
    )
    assert response.status_code == 200
    assert "The consent date is before the date of birth." in response.text
    subject.refresh_from_db()
    assert subject.date_of_birth.year == 1965


# --- 5: the API's date filters and empty values ----------------------------------------------


@pytest.fixture(autouse=False)
def api_client(data_manager):
    cache.clear()  # the throttles count in the cache
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=data_manager).key}")
    yield client
    cache.clear()


def list_operations(client) -> dict[str, list[dict]]:
    """Path -> query parameters of every list endpoint of the schema (no path parameter)."""
    schema = client.get("/api/v1/schema/", {"format": "json"}).json()
    return {
        route: operation["get"].get("parameters", [])
        for route, operation in schema["paths"].items()
        if "get" in operation and "{" not in route
    }


def date_filters(client) -> list[tuple[str, str, dict]]:
    """(path, parameter, the other required parameters) of every date or date-time filter."""
    found = []
    for route, parameters in list_operations(client).items():
        for parameter in parameters:
            if parameter["in"] == "query" and parameter["schema"].get("format") in (
                "date",
                "date-time",
            ):
                required = {
                    p["name"]: "2000-01-01T00:00:00Z"
                    for p in parameters
                    if p.get("required") and p["name"] != parameter["name"]
                }
                found.append((route, parameter["name"], required))
    return found


def sentence(response, parameter) -> str:
    assert response.status_code == 400, response.content
    [(name, messages)] = response.json().items()
    assert name == parameter
    [text] = messages
    assert parameter in text and text.endswith(".") and len(text.split()) >= 6, text
    return text


def test_every_date_filter_refuses_an_offset_no_place_uses_with_a_sentence(api_client):
    filters = date_filters(api_client)
    names = {(route, name) for route, name, _ in filters}
    assert ("/api/v1/subjects/", "updated_since") in names
    assert ("/api/v1/allocations/", "updated_since") in names
    assert ("/api/v1/audit-trail/", "since") in names
    assert ("/api/v1/deletions/", "since") in names
    for route, name, required in filters:
        for value in (
            "2026-01-01T00:00:00+16:00",
            "2026-01-01T00:00:00+1600",
            "2026-01-01T00:00:00-13:00",
            "2026-01-01T00:00:00.5+14:30",
            "2026-01-01T00:00:00+05:75",
            "2026-01-01T00:00:00+24:00",
        ):
            response = api_client.get(route, {**required, name: value})
            assert "offset" in sentence(response, name), (route, value)
            assert "timedelta" not in response.content.decode()
        for value in (
            "2026-01-01T00:00:00+14:00",
            "2026-01-01T00:00:00-12:00",
            "2026-01-01T00:00:00+05:45",
            "2026-01-01T00:00:00Z",
            "2026-01-01",
        ):
            response = api_client.get(route, {**required, name: value})
            assert response.status_code == 200, (route, value, response.content)


def test_an_empty_value_of_any_list_parameter_is_a_400_with_a_sentence(api_client, subject):
    """Never ignored: a 400, except a free-text filter, where it is the blank value matched
    exactly (``queries?check_code=``: the queries raised by hand)."""
    routes = {f"/api/v1/{form.name}/": form.name for form in records.export_forms()}
    routes.update({"/api/v1/audit-trail/": None, "/api/v1/deletions/": None})
    operations = list_operations(api_client)
    refused = blank = 0
    for route, form_name in routes.items():
        parameters = [p for p in operations[route] if p["in"] == "query"]
        required = {p["name"]: "2000-01-01T00:00:00Z" for p in parameters if p.get("required")}
        text = params.blank_matching(form_api(form_name).filters) if form_name else set()
        for parameter in parameters:
            name = parameter["name"]
            response = api_client.get(route, {**required, name: ""})
            if name in text:
                assert response.status_code == 200, (route, name, response.content)
                blank += 1
            else:
                assert "empty" in sentence(response, name), (route, name)
                refused += 1
        if required:
            [name] = required
            assert "empty" in sentence(api_client.get(route, {name: " "}), name)
    assert refused > 30 and blank >= 1
    manual = api_client.get("/api/v1/queries/", {"check_code": ""})
    assert manual.status_code == 200


# --- 7: history pages of ids that are not ids ------------------------------------------------


def test_a_history_page_of_an_id_that_is_not_one_is_a_404_for_every_admin_model(
    client, superuser, subject
):
    client.force_login(superuser)
    checked = 0
    for model in admin.site._registry:
        info = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        for object_id in ("abc", "9" * 30, "-1", "1.5"):
            url = reverse(f"{info}_history", args=[object_id])
            assert client.get(url).status_code == 404, url
        checked += 1
    assert checked == len(admin.site._registry) > 15
    for version in ("abc", "9" * 30):
        url = reverse("admin:subjects_subject_simple_history", args=[subject.pk, version])
        assert client.get(url).status_code == 404, url
    # and a real one still opens
    ok = client.get(reverse("admin:subjects_subject_history", args=[subject.pk]))
    assert ok.status_code == 200


# --- 9: roles and users changed in the admin: a reason, and the security log -----------------


def permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def role_events():
    return AuthEvent.objects.filter(kind=AuthEvent.Kind.ROLES_CHANGED, username="").order_by("id")


def test_changing_a_roles_permissions_needs_a_reason_and_is_in_the_security_log(client, superuser):
    client.force_login(superuser)
    monitor = Group.objects.get(name=Role.MONITOR)
    before = set(monitor.permissions.values_list("pk", flat=True))
    added, removed = permission("subjects.change_site"), permission("subjects.view_site")
    assert removed.pk in before and added.pk not in before
    wanted = sorted((before - {removed.pk}) | {added.pk})
    url = reverse("admin:auth_group_change", args=[monitor.pk])
    seen = role_events().count()

    response = client.post(url, {"permissions": wanted})
    assert response.status_code == 200
    assert "This field is required" in response.text
    assert set(monitor.permissions.values_list("pk", flat=True)) == before
    assert role_events().count() == seen

    response = client.post(url, {"permissions": wanted, "change_reason": "Protocol v3: CRA edits"})
    assert response.status_code == 302, response.content.decode()
    assert set(monitor.permissions.values_list("pk", flat=True)) == set(wanted)
    logged = {e.detail["action"]: e for e in role_events()[seen:]}
    assert logged["add"].detail == {
        "role": "monitor",
        "action": "add",
        "permissions": ["subjects.change_site"],
        "reason": "Protocol v3: CRA edits",
    }
    assert logged["remove"].detail["permissions"] == ["subjects.view_site"]
    assert logged["remove"].detail["reason"] == "Protocol v3: CRA edits"
    assert {e.actor for e in logged.values()} == {superuser}
    # a study role keeps its name (the access module asks for it), and no role is deleted
    client.post(url, {"name": "cra", "permissions": wanted, "change_reason": "Rename"})
    monitor.refresh_from_db()
    assert monitor.name == "monitor"
    delete = client.post(reverse("admin:auth_group_delete", args=[monitor.pk]), {"post": "yes"})
    assert delete.status_code == 403
    assert Group.objects.filter(pk=monitor.pk).exists()


def test_a_new_role_needs_a_reason_and_is_in_the_security_log(client, superuser):
    client.force_login(superuser)
    url = reverse("admin:auth_group_add")
    data = {"name": "pharmacist", "permissions": [permission("subjects.view_subject").pk]}
    response = client.post(url, data)
    assert response.status_code == 200 and "This field is required" in response.text
    assert not Group.objects.filter(name="pharmacist").exists()
    response = client.post(url, {**data, "change_reason": "Drug accountability"})
    assert response.status_code == 302
    details = [e.detail for e in role_events().filter(detail__role="pharmacist")]
    assert details == [
        {"role": "pharmacist", "action": "created", "reason": "Drug accountability"},
        {
            "role": "pharmacist",
            "action": "add",
            "permissions": ["subjects.view_subject"],
            "reason": "Drug accountability",
        },
    ]


def user_form(user, **overrides) -> dict:
    data = {
        "username": user.username,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_active": "on",
        "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [p.pk for p in user.user_permissions.all()],
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    return {**data, **overrides}


def test_a_user_edit_in_the_admin_needs_a_reason_which_the_security_log_records(client, superuser):
    user = make_user(username="newcomer")
    client.force_login(superuser)
    url = reverse("admin:auth_user_change", args=[user.pk])
    monitor = Group.objects.get(name=Role.MONITOR)
    change = {
        "last_name": "Li",
        "groups": [monitor.pk],
        "user_permissions": [permission("subjects.view_site").pk],
    }
    seen = AuthEvent.objects.filter(username="newcomer").count()

    response = client.post(url, user_form(user, **change))
    assert response.status_code == 200 and "This field is required" in response.text
    user.refresh_from_db()
    assert user.last_name == "" and not user.groups.exists()
    assert AuthEvent.objects.filter(username="newcomer").count() == seen

    reason = "Joined the monitoring team (ticket 42)"
    response = client.post(url, user_form(user, **change, change_reason=reason))
    assert response.status_code == 302, response.content.decode()
    user.refresh_from_db()
    assert user.last_name == "Li" and list(user.groups.all()) == [monitor]
    logged = list(AuthEvent.objects.filter(username="newcomer").order_by("id")[seen:])
    assert {(e.kind, e.detail.get("reason")) for e in logged} == {
        (AuthEvent.Kind.USER_CHANGED, reason),
        (AuthEvent.Kind.ROLES_CHANGED, reason),
    }
    assert {e.actor for e in logged} == {superuser}
    changed = [e.detail for e in logged if e.kind == AuthEvent.Kind.USER_CHANGED]
    assert {"changes": {"last_name": {"old": "", "new": "Li"}}, "reason": reason} in changed
    assert {"action": "add", "permissions": ["subjects.view_site"], "reason": reason} in changed


def test_a_password_set_in_the_admin_needs_a_reason_which_the_security_log_records(
    client, superuser
):
    user = make_user(username="forgetful")
    client.force_login(superuser)
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    data = {"password1": "a brand new passphrase 2026", "password2": "a brand new passphrase 2026"}
    data["usable_password"] = "true"
    response = client.post(url, data)
    assert response.status_code == 200 and "This field is required" in response.text
    assert client.login(username="forgetful", password=PASSWORD)
    client.force_login(superuser)
    response = client.post(url, {**data, "change_reason": "Forgotten, identity checked"})
    assert response.status_code == 302, response.content.decode()
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.PASSWORD_CHANGED, username="forgetful")
    assert event.detail == {"reason": "Forgotten, identity checked"}
    assert event.actor == superuser


def test_reasons_are_only_for_the_change_they_were_given_for(superuser):
    """A change outside a reasoned admin save is logged without one (``change_reason`` ends)."""
    user = make_user(username="later")
    user.last_name = "Wang"
    user.save()
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.USER_CHANGED, username="later")
    assert "reason" not in event.detail
    assert timezone.now() - event.at < timedelta(minutes=1)


def test_role_permissions_set_by_migrate_are_logged_with_where_they_come_from(db):
    from accounts.roles import sync_role_permissions

    monitor = Group.objects.get(name=Role.MONITOR)
    monitor.permissions.remove(permission("subjects.view_site"))
    seen = role_events().count()
    sync_role_permissions()
    [event] = role_events()[seen:]
    assert event.detail == {
        "role": "monitor",
        "action": "add",
        "permissions": ["subjects.view_site"],
        "reason": "Role permissions set by migrate from accounts/roles.py",
    }
    assert event.actor is None
