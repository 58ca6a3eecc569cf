"""Site isolation: every URL pattern x every role x another site's records.

One case per URL pattern (a URL naming any record: one per kind of 202 record), generated from
the URLconf (``get_resolver()`` walked, each path parameter filled from the records of site 202
by its name, ``World.params``), so an endpoint added later is checked without touching this file
(``test_every_url_pattern_has_a_case``); a parameter nobody mapped fails
``test_every_url_parameter_is_mapped`` (map it in ``_standard_params`` or in its app's
``APP_RECORDS`` function; an admin page or an API detail needs a record of 202 of its model: the
app's function creates it).

Seven users look at site 202's data: site staff, an investigator and a monitor of site 101, a
user with no role at all (site roles: they must see nothing of 202) and the study-wide roles
(a data manager, the sponsor, a statistician: they see 202, the sponsor's people without direct
identifiers). For every case and user:

* read: a GET shows none of 202's subject identifiers, screening numbers or direct identifiers
  (body and redirect target; the sponsor's people: no initials, date of birth or screening
  number), never a 500,
  and a site user gets a 403, a 404 or the login page for a URL naming a 202 record;
* write: a POST of the form a legitimate writer is offered (replayed, with a reason and the
  password) changes no row of clinical data (checksums of the tables and their history
  before and after; the data manager may change sites, memberships, queries and freeze/lock
  states);
* existence: for a site user, a URL naming an existing 202 record answers exactly like the same
  URL naming a record that does not exist (status, body, redirect), GET and POST.

Each POST runs in a savepoint rolled back after the check, so cases never disturb each other.
"""

from __future__ import annotations

import gc
import itertools
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote, urlencode

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import Client, override_settings
from django.urls import Resolver404, URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern
from rest_framework.authtoken.models import Token, TokenProxy

from accounts.models import AuthEvent
from adverse_events.models import AdverseEvent, AeCausality, CtcaeTerm
from adverse_events.services import record_adverse_event
from adverse_events.starter_terms import load_starter_terms
from core.roles import Role
from eligibility import services as eligibility_services
from eligibility.models import EligibilitySignature, PriorTherapy
from queries import services as query_services
from queries.models import QueryMessage
from queries.views import ACTIONS
from randomization import services as randomization_services
from randomization.arms import DRUGS_OF_ARM, Arm
from randomization.selectors import arm_of
from subjects import services as subject_services
from subjects.models import SiteMembership, Subject

from .builders import (
    PASSWORD,
    ensure_active_list,
    make_eligible_assessment,
    make_site,
    make_subject,
    make_subject_in_arm,
    make_user,
    site_today,
)
from .builders.eligibility import make_prior_therapy_rows
from .builders.forms import post_forms
from .builders.monitoring import lock_and_unlock_study
from .builders.worlds import built_once

# --- site 202's records and what must not leak of them --------------------------------------------

INITIALS = "QXZJ"
DATE_OF_BIRTH = date(1958, 3, 29)
SCREENING_NUMBER = "SCRN-B-47118"
DOB_SPELLINGS = ("1958-03-29", "29/03/1958", "03/29/1958", "1958/03/29", "March 29, 1958")
NO_SUCH_SUBJECT = "999-9999"
NO_SUCH_ID = "987654"


@dataclass
class World:
    site_a: object
    site_b: object
    subject: Subject
    second: Subject
    ae: AdverseEvent
    query: object
    writer: object  # an investigator of 202: the legitimate writer whose forms are replayed
    coordinator: object  # 202's site staff, who entered its records
    data_manager: object
    superuser: object
    objects: dict[str, object]  # model label -> a record of 202 (or the one used for its admin)
    params: dict = field(default_factory=dict)  # URL parameter -> values (``_values``)
    markers: tuple[str, ...] = ()  # what a site user must never see of 202 (``seal``)
    identifiers: tuple[str, ...] = ()  # what the sponsor's people must never see (``seal``)
    broken: list[str] = field(default_factory=list)  # app record builders that failed
    seen: dict = field(default_factory=dict)  # case -> status of the legitimate user's GET

    def seal(self) -> None:
        """Every subject of 202 (the apps' builders add some): identifiers and screening
        numbers, and the first subject's direct identifiers; of them, the screening numbers and
        the direct identifiers for the sponsor's people."""
        subjects = Subject.objects.filter(site=self.site_b).order_by("pk")
        numbers = [
            n
            for pair in subjects.values_list("subject_identifier", "screening_number")
            for n in pair
            if n
        ]
        self.markers = (*dict.fromkeys(numbers), INITIALS, *DOB_SPELLINGS)
        screening = dict.fromkeys(subjects.values_list("screening_number", flat=True))
        self.identifiers = (*screening, INITIALS, *DOB_SPELLINGS)


@dataclass
class Records:
    """What one app's builder adds to the world: records for the admin and the record URLs
    (model label -> record) and URL values (``_values``' PARAMS keys -> [(value, missing)])."""

    objects: dict[str, object] = field(default_factory=dict)
    params: dict[str, list] = field(default_factory=dict)


def build_world() -> World:
    load_starter_terms()
    ensure_active_list()
    site_a, site_b = make_site("101"), make_site("202")
    data_manager = make_user(Role.DATA_MANAGER, is_staff=True)
    # A StudyLock row (locked, then unlocked): the study locks only with no open query and every
    # casebook signed, so before any subject.
    lock_and_unlock_study(data_manager=data_manager)
    coordinator = make_user(Role.SITE_STAFF, site_b)
    writer = make_user(Role.INVESTIGATOR, site_b)
    subject = make_subject(
        site_b,
        by=coordinator,
        initials=INITIALS,
        date_of_birth=DATE_OF_BIRTH,
        screening_number=SCREENING_NUMBER,
    )
    assessment = make_eligible_assessment(subject, by=coordinator, investigator=writer)
    # A second subject of 202, in screening, with a prior systemic therapy (not eligible).
    second = make_subject(site_b, by=coordinator, initials=INITIALS, screening_number="SCRN-B-2")
    second_assessment = make_eligible_assessment(
        second, by=coordinator, prior_systemic_therapy=True, sign=False
    )
    eligibility_services.save_prior_therapies(
        second_assessment, user=coordinator, rows=make_prior_therapy_rows(), reason=""
    )
    allocation = randomization_services.randomize(subject, coordinator)
    subject = Subject.objects.get(pk=subject.pk)
    ae = record_adverse_event(
        subject,
        user=coordinator,
        term=CtcaeTerm.objects.get(term="Hypertension"),
        grade=2,
        onset_date=site_today(),
        ongoing=True,
        outcome="not_recovered",
        causality={
            drug: {"causality": "possible", "action_taken": "not_changed"}
            for drug in DRUGS_OF_ARM[arm_of(subject)]
        },
    )
    query = query_services.raise_query(
        subject, field="initials", message="Please check the initials.", user=data_manager
    )
    superuser = make_user(None, is_staff=True, is_superuser=True)
    Client().force_login(coordinator)  # a security log entry
    token = Token.objects.create(user=coordinator)
    objects = {
        "subjects.site": site_b,
        "subjects.sitemembership": SiteMembership.objects.get(user=coordinator),
        "subjects.subject": subject,
        "eligibility.eligibilityassessment": assessment,
        "eligibility.priortherapy": PriorTherapy.objects.get(assessment=second_assessment),
        "eligibility.eligibilitysignature": EligibilitySignature.objects.get(assessment=assessment),
        "randomization.allocation": allocation,
        "randomization.slot": allocation.slot,
        "randomization.stratum": allocation.slot.stratum,
        "randomization.randomizationlist": allocation.slot.stratum.rlist,
        "adverse_events.adverseevent": ae,
        "adverse_events.aecausality": AeCausality.objects.filter(adverse_event=ae).first(),
        "adverse_events.ctcaeterm": ae.term,
        "queries.dataquery": query,
        "queries.querymessage": QueryMessage.objects.filter(query=query).first(),
        "auth.user": coordinator,
        "auth.group": Group.objects.get(name=Role.SITE_STAFF),
        "authtoken.tokenproxy": TokenProxy.objects.get(pk=token.pk),
        "accounts.authevent": AuthEvent.objects.filter(username=coordinator.username).first(),
    }
    world = World(
        site_a,
        site_b,
        subject,
        second,
        ae,
        query,
        writer,
        coordinator,
        data_manager,
        superuser,
        objects,
    )
    for build in APP_RECORDS:
        try:
            with transaction.atomic():
                records = build(world)
        except Exception as error:  # reported by test_every_app_has_records_of_202
            world.broken.append(f"{build.__name__}: {type(error).__name__}: {error}")
            continue
        world.objects.update(records.objects)
        world.params.update(records.params)
    world.subject = Subject.objects.get(pk=subject.pk)
    # The URL parameters' values: the core apps', each exported form's API detail key, the apps'.
    world.params = {**_standard_params(world), **_api_detail_params(world), **world.params}
    world.seal()
    return world


def _api_detail_params(world: World) -> dict[str, list]:
    """The key of each exported form's API detail (``/api/v1/<form>/<key>/``): a record of 202's
    (none: the parameter stays unmapped)."""
    from core.access import site_lookup_of
    from exports.api import FormApi
    from exports.records import export_forms

    params = {}
    for form in export_forms():
        name, path = FormApi(form).lookup
        model = form.model_class()
        site = site_lookup_of(model)
        records = model._default_manager.filter(**{site: world.site_b.pk}).order_by("pk")
        value = records.values_list(path, flat=True).first()
        if value is not None:
            missing = NO_SUCH_ID if path == "pk" or str(value).isdigit() else NO_SUCH_SUBJECT
            params[f"{form.name}-detail:{name}"] = [(str(value), missing)]
    return params


# --- each app's records of 202 --------------------------------------------------------------------
# One function per app of the CRFs added on top of the core world (through the app's test builders
# and services, as a site enters them): a CRF app added later adds its function to APP_RECORDS.
# Records of 202 with ``site_lookup`` are found for the admin pages and the API details without
# being listed (``_object_for``, ``_api_detail_params``); list those whose generic record URLs
# (freeze/lock, SDV, "view on site") should be walked, and the values of the app's own URL
# parameters.


def _treatment_records(world: World) -> Records:
    """Cycle 1 (arm A: with its IV doses; arm B: and a sorafenib period) of the first subject
    and of a subject of the other arm: every treatment form has rows at 202."""
    from treatment.models import OralDosingPeriod

    from .builders.treatment import add_exposure_records

    first = add_exposure_records(Subject.objects.get(pk=world.subject.pk), by=world.coordinator)
    other = Arm.B if arm_of(first) == Arm.A else Arm.A
    other = add_exposure_records(
        make_subject_in_arm(other, world.site_b, by=world.coordinator), by=world.coordinator
    )
    period = OralDosingPeriod.objects.get(subject__in=(first, other))
    return Records(
        objects={
            "treatment.cycle": first.treatment_cycles.get(),
            "treatment.oraldosingperiod": period,
        },
        params={
            "treatment:cycle:number": [("1", NO_SUCH_ID)],  # the first subject's
            "treatment:oral_period:identifier": [
                (period.subject.subject_identifier, NO_SUCH_SUBJECT)
            ],
            "treatment:oral_period:pk": [(str(period.pk), NO_SUCH_ID)],
        },
    )


def _efficacy_records(world: World) -> Records:
    """The first subject's baseline lesions and two follow-up assessments (a PR, then a PD)."""
    from .builders.efficacy import add_efficacy_records

    assessment = add_efficacy_records(world.subject, by=world.coordinator)[0]
    params = {
        f"efficacy:{name}:number": [("1", NO_SUCH_ID)]
        for name in ("target_edit", "non_target_edit", "assessment")
    }
    return Records(objects={"efficacy.tumorassessment": assessment}, params=params)


def _survival_records(world: World) -> Records:
    """A subject of 202 randomized 200 days ago whose treatment ended, followed up (with a
    subsequent therapy) and who died: every survival form has a row."""
    from .builders.survival import (
        end_treatment,
        follow_up,
        randomized_days_ago,
        record_death,
        study_day,
    )

    subject = randomized_days_ago(Arm.A, world.site_b, 200, by=world.coordinator)
    eot = end_treatment(subject, by=world.coordinator, day=90)
    therapy = {"agent": "Lenvatinib", "start_date": study_day(subject, 100)}
    contact = follow_up(subject, by=world.coordinator, day=120, therapies=[therapy])
    record_death(subject, by=world.coordinator, day=150)
    identifier = [(subject.subject_identifier, NO_SUCH_SUBJECT)]
    return Records(
        objects={"survival.endoftreatment": eot, "survival.survivalfollowup": contact},
        params={
            "survival:follow_up:identifier": identifier,
            "survival:follow_up:number": [(str(contact.contact_number), NO_SUCH_ID)],
        },
    )


def _monitoring_records(world: World) -> Records:
    """A subject of 202 at the end of its participation with every monitoring record: its record
    verified, record and casebook frozen then reopened, casebook signed; and the first
    subject's record and casebook frozen and reopened (a casebook state to show)."""
    from monitoring import services as monitoring
    from monitoring.models import LockLevel

    from .builders.monitoring import add_monitoring_records

    add_monitoring_records(
        make_subject(world.site_b, by=world.coordinator),
        by=world.coordinator,
        data_manager=world.data_manager,
        investigator=world.writer,
    )
    for level, reason in ((LockLevel.FROZEN, ""), (LockLevel.OPEN, "Frozen for a test")):
        monitoring.set_casebook_state(world.subject, level, user=world.data_manager, reason=reason)
    return Records()


APP_RECORDS = (_treatment_records, _efficacy_records, _survival_records, _monitoring_records)


# --- the URLconf walk -----------------------------------------------------------------------------


def _regex_parts(regex: str) -> list:
    """A regex route as a list of literal text and groups ``("name" or None)``, in order."""
    parts, text, i = [], "", 0
    while i < len(regex):
        char = regex[i]
        if char == "\\" and i + 1 < len(regex):
            text += regex[i + 1]
            i += 2
        elif char == "(":
            depth, j = 1, i + 1
            while depth:
                depth += {"(": 1, ")": -1}.get(regex[j], 0) if regex[j - 1] != "\\" else 0
                j += 1
            named = re.match(r"\(\?P<(\w+)>", regex[i:j])
            if regex[i : i + 3] != "(?:":
                parts.extend([text, (named.group(1) if named else None,)])
                text = ""
            i = j
        elif char in "^$":
            i += 1
        elif char == "?" and text.endswith("/"):
            text, i = text[:-1], i + 1  # "/?": without the slash (with it, another route may match)
        else:
            text += char
            i += 1
    return [*parts, text]


def _route_parts(route: str) -> list:
    parts, last = [], 0
    for found in re.finditer(r"<(?:\w+:)?(\w+)>", route):
        parts.extend([route[last : found.start()], (found.group(1),)])
        last = found.end()
    return [*parts, route[last:]]


def _walk(patterns, parts=(), text="", namespace=""):
    """(route text, namespace, URL name, parts: literal text and parameter slots) of every
    concrete pattern."""
    for entry in patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            own = _route_parts(str(pattern))
        elif isinstance(pattern, RegexPattern):
            own = _regex_parts(pattern.regex.pattern)
        else:  # pragma: no cover - a new pattern class
            raise AssertionError(f"unknown pattern class {type(pattern)}")
        route = text + str(pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(
                entry.url_patterns, (*parts, *own), route, entry.namespace or namespace
            )
        elif isinstance(entry, URLPattern):
            yield route, namespace, entry.name or "", [*parts, *own]


@dataclass
class Case:
    route: str  # the pattern, as the URLconf joins it
    label: str  # namespace:name (or the route)
    path: str
    absent: str | None  # the same URL naming records that do not exist (None: names none)
    query: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.path}?{urlencode(self.query)}" if self.query else self.path


# Parameters that name a record: filled with 202's record, and with a missing one for the twin.
def _admin_model(route: str):
    """The model of an admin URL (``admin/<app>/<model>/...``), if any."""
    for model in admin.site._registry:
        if route.startswith(f"admin/{model._meta.app_label}/{model._meta.model_name}/"):
            return model
    return None


def _object_for(world: World, model) -> object | None:
    label = model._meta.label_lower
    if label in world.objects:
        return world.objects[label]
    if hasattr(model, "site_lookup"):  # a record of 202 (build_world must have made one)
        lookup = model.site_lookup
        return model._default_manager.filter(**{lookup: world.site_b.pk}).order_by("pk").first()
    return model._default_manager.order_by("pk").first()  # configuration: any row


def _history_id(obj) -> str:
    return str(type(obj).history.filter(id=obj.pk).order_by("-history_id")[0].history_id)


def _values(world: World, route: str, namespace: str, name: str, param, position: int):
    """[(value, value naming no record or None)] for one parameter of one URL; None: unmapped.

    ``World.params`` is the explicit map: parameter name (or "url name:parameter") -> values.
    """
    label = f"{namespace}:{name}" if namespace else name
    model = _admin_model(route) if namespace == "admin" else None
    if model is not None and name.endswith("_simple_history") and param is None:
        obj = _object_for(world, model)
        if obj is None:
            return None
        return [(str(obj.pk), NO_SUCH_ID)] if position == 0 else [(_history_id(obj), NO_SUCH_ID)]
    if model is not None and param in ("object_id", "pk", "id"):
        obj = _object_for(world, model)
        return None if obj is None else [(str(obj.pk), NO_SUCH_ID)]
    for key in (f"{label}:{param}", param):
        if key in world.params:
            return world.params[key]
    return None


def _standard_params(world: World) -> dict[str, list]:
    """``World.params`` of the core apps: parameter name (or "url name:parameter") -> values."""
    subject, ae, query = world.subject, world.ae, world.query
    return {
        "identifier": [(subject.subject_identifier, NO_SUCH_SUBJECT)],
        "subject_identifier": [(subject.subject_identifier, NO_SUCH_SUBJECT)],
        "subject": [(subject.subject_identifier, NO_SUCH_SUBJECT)],
        "number": [(str(ae.ae_number), NO_SUCH_ID)],
        "code": [(world.site_b.code, "999")],
        "queries:detail:pk": [(str(query.pk), NO_SUCH_ID)],
        "queries:act:pk": [(str(query.pk), NO_SUCH_ID)],
        "queries:act:action": [(action, None) for action in ACTIONS],
        "adverse-events-detail:id": [(str(ae.pk), NO_SUCH_ID)],
        "queries-detail:id": [(str(query.pk), NO_SUCH_ID)],
        "format": [("json", None), ("csv", None)],
        "api-root:format": [(".json", None)],  # the drf_format_suffix converter: ".json"
        "domain": [(name, None) for name in _dataset_names()],
        "app_label": [("subjects", None)],
        "url": [("no-such-page/", None)],  # the admin's catch-all
    }


def _dataset_names() -> list[str]:
    from exports.dataset_json import datasets

    return [dataset.name.lower() for dataset in datasets()]


def _record_pairs(world: World) -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """(content type, record) values for URLs that name any record by both (the admin's "view on
    site" shortcut, ...): each of 202's records."""
    pairs = []
    for obj in world.objects.values():
        if hasattr(type(obj), "site_lookup"):
            ct = str(ContentType.objects.get_for_model(obj).pk)
            pairs.append(((ct, ct), (str(obj.pk), NO_SUCH_ID)))
    return pairs


# Query strings that name a record: pages whose records come in the query string.
def _query_cases(world: World) -> list[Case]:
    subject = world.subject
    record = f"{ContentType.objects.get_for_model(subject).pk}:{subject.pk}"
    return [
        Case(
            "queries/raise/", "queries:raise ?record", "/queries/raise/", None, {"record": record}
        ),
        Case("subjects/", "subjects:list ?q", "/subjects/", None, {"q": SCREENING_NUMBER}),
        Case("api/v1/subjects/", "subjects-list ?site", "/api/v1/subjects/", None, {"site": "202"}),
    ]


def _fillings(world: World, route: str, namespace: str, name: str, slots: list, unmapped: list):
    """The values for the URL's parameters (``slots``: their names, None for an unnamed group),
    each a list of (value, value naming no record or None): one filling per URL pattern, but one
    per kind of 202 record for a URL naming any record (``_record_pairs``: each model's own site
    lookup is then what refuses). A parameter that only chooses within one view (a format, a
    dataset, a query action) takes its first value: the pattern's view and its scoping are the
    same for the others (the sponsor's identifiers in each dataset and format:
    ``test_demo_study``)."""
    pair = ("content_type_id", "object_id")
    has_pair = set(pair) <= set(slots)
    groups = []  # (slot indices, [values for them])
    if has_pair:
        groups.append(([slots.index(p) for p in pair], _record_pairs(world)))
    for i, param in enumerate(slots):
        if has_pair and param in pair:
            continue
        values = _values(world, route, namespace, name, param, i)
        if values is None:
            unmapped.append(f"{route} [{param or f'group {i}'}]")
            return []
        if all(missing is None for _, missing in values):
            values = values[:1]  # a choice within one view (format, dataset, action): one
        groups.append(([i], [(v,) for v in values]))
    found = []
    for combination in itertools.product(*[values for _, values in groups]):
        filled = [None] * len(slots)
        for (indices, _), chosen in zip(groups, combination, strict=True):
            for i, value in zip(indices, chosen, strict=True):
                filled[i] = value
        found.append(filled)
    return found


def generate_cases(world: World) -> tuple[list[Case], list[str]]:
    """Every URL of the project filled from 202's records, and the parameters nobody mapped."""
    cases, unmapped = [], []
    for route, namespace, name, parts in _walk(get_resolver().url_patterns):
        slots = [part[0] for part in parts if isinstance(part, tuple)]
        for filling in _fillings(world, route, namespace, name, slots, unmapped):
            path, absent, names_record = "/", "/", False
            values = iter(filling)
            for part in parts:
                if isinstance(part, tuple):
                    value, missing = next(values)
                    path += value
                    absent += missing or value
                    names_record = names_record or missing is not None
                else:
                    path += part
                    absent += part
            label = f"{namespace}:{name}" if namespace else (name or route)
            try:
                match = resolve(path)
            except Resolver404:
                raise AssertionError(
                    f"{path}, filled in for {route}, resolves to nothing"
                ) from None
            assert match.route.replace("^", "") == route.replace("^", ""), (
                f"{path} resolves to {match.route}, not {route}"
            )
            cases.append(Case(route, label, path, absent if names_record else None))
    return [*cases, *_query_cases(world)], unmapped


# --- the users, the requests and the checks -------------------------------------------------------

SITE_USERS = ("site_staff", "investigator", "monitor", "no membership")
ROLES = (*SITE_USERS, "data_manager", "sponsor", "statistician")


def make_role_user(role: str, world: World):
    if role == "no membership":
        return make_user(None)
    if role in (Role.SITE_STAFF, Role.INVESTIGATOR, Role.MONITOR):
        return make_user(role, world.site_a)
    return make_user(role, is_staff=role in (Role.DATA_MANAGER, Role.STATISTICIAN))


def _is_api(path: str) -> bool:
    return path.startswith("/api/")


def _body(response) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)
    else:
        content = response.content
    return content.decode(errors="replace")


@dataclass
class Answer:
    status: int
    body: str
    location: str


def request(client: Client, method: str, path: str, data=None, token: str = "") -> Answer:
    """One request in a savepoint rolled back afterwards (a write, a failed view's transaction)."""
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token and _is_api(path) else {}
    with transaction.atomic():
        response = getattr(client, method)(path, data or {}, **headers)
        answer = Answer(response.status_code, _body(response), response.get("Location", ""))
        transaction.set_rollback(True)
    client.cookies.pop("messages", None)  # a message is for the next page of this request only
    return answer


_NOISE = re.compile(
    r'name="(?:csrfmiddlewaretoken|submission)" value="[^"]*"|"csrfToken": "[^"]*"'
    r"|csrftoken=[^;\s\"]*|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?"
)


def normalized(answer: Answer, path: str) -> tuple:
    """An answer with the URL's own text and per-request tokens taken out."""

    def clean(text: str) -> str:
        return _NOISE.sub("~", text.replace(quote(path, safe=""), "{url}").replace(path, "{url}"))

    return answer.status, clean(answer.body), clean(answer.location)


def without_request(text: str, case: Case) -> str:
    """``text`` without the request's own path and query values (a page may echo what was asked:
    "no page at /subjects/202-0001/", the search box); the twin comparison catches a page that
    answers differently for an existing record. Nor the per-request tokens (``_NOISE``): a random
    CSRF token spells a marker now and then ("...QXZJ..."), which shows nothing of a record."""
    for echo in (case.url, quote(case.url, safe=""), case.path, *case.query.values()):
        text = text.replace(echo, "{request}")
    return _NOISE.sub("~", text)


LOGIN_PAGES = ("/accounts/login/", "/admin/login/")


def _difference(one: tuple, other: tuple) -> str:
    """The first differing line of two normalized answers."""
    if one[0] != other[0]:
        return f"status {one[0]} / {other[0]}"
    for a, b in zip(one[1].splitlines(), other[1].splitlines(), strict=False):
        if a != b:
            return f"{a.strip()[:200]!r} / {b.strip()[:200]!r}"
    return f"location {one[2]!r} / {other[2]!r}" if one[2] != other[2] else "length"


def read_failures(role: str, case: Case, answer: Answer, world: World) -> list[str]:
    where = f"{role} GET {case.path} ({case.label})"
    if answer.status >= 500:
        return [f"{where}: {answer.status}"]
    found = []
    markers = (
        world.markers
        if role in SITE_USERS
        else world.identifiers
        if role in (Role.SPONSOR, Role.STATISTICIAN)
        else ()
    )
    body, location = without_request(answer.body, case), without_request(answer.location, case)
    for marker in markers:
        if marker in body or marker in location:
            found.append(f"{where}: shows {marker!r} (status {answer.status})")
    if role in SITE_USERS and case.absent is not None:
        to_login = answer.status == 302 and answer.location.startswith(LOGIN_PAGES)
        if answer.status not in (403, 404, 405) and not to_login:
            found.append(f"{where}: status {answer.status} {answer.location}")
    return found


# Tables a POST must not change: every project app's (a CRF app added later is watched too) but
# the security log (a login writes it), and users, groups and tokens. Clinical data: nobody in the
# matrix (the legitimate writers are 202's site staff and investigators). Sites, memberships,
# queries and freeze/lock states: the data manager may.
UNWATCHED_APPS = ("core", "accounts")
DATA_MANAGER_MAY_CHANGE = {
    "subjects.site",
    "subjects.historicalsite",
    "subjects.sitemembership",
    "subjects.historicalsitemembership",
    "monitoring.recordstate",
    "monitoring.historicalrecordstate",
    "monitoring.casebookstate",
    "monitoring.historicalcasebookstate",
    "monitoring.studylock",
    "monitoring.historicalstudylock",
}


def watched_tables() -> dict[str, str]:
    """{table: model label} of the project's data and configuration, history included, and of
    users, groups and tokens."""
    project = [
        config.label
        for config in apps.get_app_configs()
        if getattr(config, "edc_project_app", False) and config.label not in UNWATCHED_APPS
    ]
    tables = {}
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.app_label in (*project, "auth", "authtoken") and not meta.proxy:
            tables[meta.db_table] = meta.label_lower
    return tables


def checksums(tables) -> dict[str, str]:
    """One checksum per table (every row as JSON; a login's ``last_login`` apart)."""
    tables = list(tables)
    row = "(to_jsonb(t) - 'last_login')::text"
    columns = ", ".join(
        f"(SELECT md5(coalesce(string_agg({row}, '|' ORDER BY {row}), '')) FROM "
        f"{connection.ops.quote_name(table)} t)"
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return dict(zip(tables, cursor.fetchone(), strict=True))


def written(tables) -> dict[str, int]:
    """Rows inserted, updated or deleted so far in this transaction, per table (PostgreSQL's
    statistics: a cheap first look; ``checksums`` then tells what really changed)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_xact_user_tables "
            "WHERE relname = ANY(%s)",
            [list(tables)],
        )
        return dict(cursor.fetchall())


class Watch:
    """The watched tables' checksums when the watch starts, and this transaction's write
    counters as last read. An action's suspects are the tables whose counters moved since the
    last read (one statistics query per action; writes rolled back in between move them too:
    those tables are checksummed and found unchanged)."""

    def __init__(self):
        self.tables = watched_tables()
        self.before = checksums(self.tables)
        self.counts = written(self.tables)

    def changes(self, action) -> tuple[object, list[str]]:
        """Run ``action`` in a savepoint rolled back afterwards: its result, and the labels of
        the tables whose rows it changed."""
        with transaction.atomic():
            result = action()
            counts = written(self.tables)
            suspects = [t for t, n in counts.items() if n != self.counts.get(t, 0)]
            after = checksums(suspects) if suspects else {}
            transaction.set_rollback(True)
        self.counts = counts
        return result, sorted(self.tables[t] for t in after if after[t] != self.before[t])


def may_change(role: str, label: str) -> bool:
    if role != Role.DATA_MANAGER:
        return False
    return label in DATA_MANAGER_MAY_CHANGE or label.startswith("queries.")


GENERIC_POST = {
    "reason": "isolation probe",
    "change_reason": "isolation probe",
    "password": PASSWORD,
    "text": "isolation probe",
    "post": "yes",
}


def replay_payload(case: Case, writer_client: Client, admin_client: Client) -> tuple[dict, int]:
    """The form a legitimate user gets on the page (202's investigator on the site pages, a
    superuser on the admin, query and API pages), submitted unchanged, with a reason and the
    password; and the status of that user's GET."""
    client = writer_client
    if case.path.startswith(("/admin/", "/queries/", "/api/")):
        client = admin_client
    answer = request(client, "get", case.url)
    html = answer.status == 200 and answer.body.lstrip()[:1] == "<"  # not JSON, CSV, XML
    forms = post_forms(answer.body) if html and not answer.body.startswith("<?xml") else []
    own = [f for f in forms if f.action in ("", case.path)] or forms
    data = max(own, key=lambda f: len(f.fields)).data() if own else {}  # the page's main form
    for name, value in GENERIC_POST.items():
        if not data.get(name):
            data[name] = value
    for name in [n for n in data if n.endswith("-text") or n.endswith("reason")]:
        data[name] = data[name] or "isolation probe"
    return data, answer.status


# --- the fixtures ---------------------------------------------------------------------------------


@contextmanager
def quick_requests():
    """What every request of the matrix would spend its time on apart from the views: a
    database session read (and often written) per request (sessions in the cache instead: no
    view reads the session table), a logged traceback per refusal (4xx answers are the rule
    here; a 5xx is still logged), and the garbage collector walking the world's objects again
    and again (frozen once built)."""
    cached = "django.contrib.sessions.backends.cache"
    refusals = logging.getLogger("django.request")
    level = refusals.level
    refusals.setLevel(logging.ERROR)
    try:
        with override_settings(SESSION_ENGINE=cached):
            yield
    finally:
        refusals.setLevel(level)
        gc.unfreeze()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Site 202's records, the cases and their replayed forms: built once for the module (in a
    transaction rolled back at its end)."""
    with built_once(django_db_blocker), quick_requests():
        built = build_world()
        cases, unmapped = generate_cases(built)
        writer, superuser = Client(), Client()
        writer.force_login(built.writer)
        superuser.force_login(built.superuser)
        for client in (writer, superuser):
            client.raise_request_exception = False
        replayed = {id(case): replay_payload(case, writer, superuser) for case in cases}
        payloads = {key: data for key, (data, _) in replayed.items()}
        built.seen = {key: status for key, (_, status) in replayed.items()}
        gc.collect()
        gc.freeze()
        yield built, cases, unmapped, payloads


def _client_for(user) -> tuple[Client, str]:
    client = Client()
    client.raise_request_exception = False
    client.force_login(user)
    return client, Token.objects.get_or_create(user=user)[0].key


# --- the tests ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_url_parameter_is_mapped(world):
    _, cases, unmapped, _ = world
    assert not unmapped, (
        "URL parameters the isolation matrix cannot fill (map them in _values' PARAMS, or the "
        "model in build_world's objects):\n" + "\n".join(unmapped)
    )


@pytest.mark.django_db
def test_every_url_pattern_has_a_case(world):
    """Each concrete pattern of the URLconf (site app, API, admin; an app added later too) is
    checked at least once for every role."""
    _, cases, unmapped, _ = world
    routes = {route for route, *_ in _walk(get_resolver().url_patterns)}
    checked = {case.route for case in cases}
    assert len(routes) > 300  # the walk finds the project's patterns
    missing = routes - checked - {line.split(" [")[0] for line in unmapped}
    assert not missing, "URL patterns without a case:\n" + "\n".join(sorted(missing))


@pytest.mark.django_db
def test_every_app_has_records_of_202(world):
    built, _, _, _ = world
    assert not built.broken, "APP_RECORDS builders that failed:\n" + "\n".join(built.broken)


@pytest.mark.django_db
def test_the_cases_cover_pages_admin_shortcuts_history_and_api(world):
    _, cases, _, _ = world
    labels = {case.label for case in cases}
    paths = [case.path for case in cases]
    assert sum(label == "admin:view_on_site" for label in labels) >= 1
    assert sum(case.label == "admin:view_on_site" for case in cases) >= 8
    assert "admin:subjects_subject_history" in labels
    assert "admin:subjects_subject_simple_history" in labels
    assert "admin:subjects_subject_delete" in labels
    assert "subjects-detail" in labels and "adverse-events-detail" in labels
    assert any(p.startswith("/api/v1/exports/dataset-json/") for p in paths)
    assert sum(case.absent is not None for case in cases) >= 100
    print(f"\nisolation matrix: {len(cases)} URLs x {len(ROLES)} roles")


@pytest.mark.django_db
def test_the_cases_reach_real_records(world):
    """The legitimate user opens the URLs naming 202's records (not all 404 for a route): the
    values filled in are real."""
    built, cases, _, _ = world
    found: dict[str, set[int]] = {}
    for case in cases:
        if case.absent is not None:
            found.setdefault(case.route, set()).add(built.seen[id(case)])
    missing = [route for route, statuses in found.items() if statuses == {404}]
    assert not missing, "\n".join(missing)


@pytest.mark.django_db
def test_the_legitimate_users_pages_answer(world):
    """No 5xx for 202's investigator (site pages) or a superuser (admin, queries, API) either:
    their GETs, made to replay their forms."""
    built, cases, _, _ = world
    errors = [f"{built.seen[id(c)]} {c.url} ({c.label})" for c in cases if built.seen[id(c)] >= 500]
    assert not errors, "\n".join(errors)


@pytest.mark.postgres
@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_isolation_matrix(world, role):
    built, cases, _, payloads = world
    user = make_role_user(role, built)
    client, token = _client_for(user)
    watch = Watch()
    failures = []
    for case in cases:
        failures += check_case(role, case, client, token, payloads[id(case)], built, watch)
        if "_auth_user_id" not in client.session:  # the case logged the user out
            client.force_login(user)
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_matrix_sees_a_broken_scope(world, monkeypatch):
    """The checks find what they look for: with the access module answering "all sites" and
    "may enter data" for everyone, site staff of 101 read 202's subject (and its existence
    shows); a change they then make is seen."""
    from core import access

    built, cases, _, payloads = world
    user = make_role_user(Role.SITE_STAFF, built)
    client, token = _client_for(user)
    watch = Watch()
    monkeypatch.setattr(access, "sees_all_sites", lambda user: True)
    monkeypatch.setattr(access, "can_enter_data", lambda user, obj: True)
    found = []
    for case in cases:
        if case.label == "subjects:detail":
            found += check_case("site_staff", case, client, token, payloads[id(case)], built, watch)
    assert any("GET /subjects/" in f and "shows" in f for f in found), found
    assert any("existence leak" in f for f in found), found
    # and a write, wherever it comes from, is seen
    _, changed = watch.changes(
        lambda: subject_services.update_demographics(
            built.subject, user=user, reason="probe", initials="ABCD"
        )
    )
    assert "subjects.subject" in changed and "subjects.historicalsubject" in changed, changed


def check_case(role, case, client, token, payload, built, watch: Watch) -> list[str]:
    """Read, write and existence checks of one URL for one user."""
    failures = []
    # read
    answer = request(client, "get", case.path, case.query, token)
    failures += read_failures(role, case, answer, built)
    if role in SITE_USERS and case.absent is not None:
        twin = request(client, "get", case.absent, case.query, token)
        seen, missing = normalized(answer, case.path), normalized(twin, case.absent)
        if seen != missing:
            failures.append(f"{role} GET {case.path}: existence leak: {_difference(seen, missing)}")
    # write
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if _is_api(case.path) else {}

    def post() -> Answer:
        response = client.post(case.url, payload, **headers)
        return Answer(response.status_code, _body(response), response.get("Location", ""))

    posted, changed = watch.changes(post)
    client.cookies.pop("messages", None)
    if posted.status >= 500:
        failures.append(f"{role} POST {case.path} ({case.label}): {posted.status}")
    changed = [label for label in changed if not may_change(role, label)]
    if changed:
        failures.append(f"{role} POST {case.path} ({case.label}) changed {sorted(changed)}")
    body = without_request(posted.body + posted.location, case)
    for marker in built.markers if role in SITE_USERS else ():
        if marker in body:
            failures.append(f"{role} POST {case.path}: shows {marker!r}")
    if role in SITE_USERS and case.absent is not None:
        twin = request(client, "post", case.absent, payload, token)
        seen, missing = normalized(posted, case.path), normalized(twin, case.absent)
        if seen != missing:
            failures.append(
                f"{role} POST {case.path}: existence leak: {_difference(seen, missing)}"
            )
    return failures
