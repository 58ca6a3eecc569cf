"""Site pages of the data queries: the inbox of the user's sites, one query with its thread and
the transitions the user may make, raising a query by hand (on one record, or on many subjects at
once), the report, the subject page's panel and the markers on the CRF pages of the apps below
(``record_field_flags``, merged by ``core.panels.field_flags``).

Who may do what is asked of ``core.access``; every write is a ``services`` call, whose refusal
becomes a form error. Another site's query is a 404, never a 403.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core import access
from core.charts import bar_chart
from core.errors import DomainError
from core.forms import run_service
from core.pages import refuse_read_only
from subjects.models import SubjectStatus
from subjects.selectors import visible_subjects

from . import selectors, services
from .checks import checks_by_code
from .forms import AnswerForm, BulkRaiseForm, RaiseForm, TextForm, safe_next
from .models import AWAITING_SITE, UNRESOLVED, DataQuery, QueryStatus, ResponseReason

# --- the transitions a page offers ----------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    title: str  # the heading of its form
    button: str
    label: str  # the label of its text
    done: str  # "Query 12 <done>."
    call: Callable[[DataQuery, object, dict], DataQuery]


ACTIONS: dict[str, Action] = {
    "answer": Action(
        "Answer the query",
        "Send the answer",
        "Answer",
        "answered",
        lambda q, user, data: services.answer_query(
            q, user=user, text=data.get("text", ""), reason=data.get("reason", "")
        ),
    ),
    "close": Action(
        "Close",
        "Close the query",
        "Why it is settled",
        "closed",
        lambda q, user, data: services.close_query(q, user=user, text=data.get("text", "")),
    ),
    "confirm": Action(
        "Close as confirmed correct",
        "Close: data confirmed correct",
        "Why the data are right as they are",
        "closed as confirmed correct: the edit check will not raise it again for these values",
        lambda q, user, data: services.close_query(
            q, user=user, text=data.get("text", ""), confirmed_correct=True
        ),
    ),
    "reopen": Action(
        "Reopen",
        "Reopen: back to the site",
        "What the site still has to do",
        "reopened",
        lambda q, user, data: services.reopen_query(q, user=user, text=data.get("text", "")),
    ),
    "cancel": Action(
        "Cancel (raised in error)",
        "Cancel the query",
        "Why it was raised in error",
        "cancelled",
        lambda q, user, data: services.cancel_query(q, user=user, text=data.get("text", "")),
    ),
}


def _form(action: str, data=None):
    if action == "answer":
        return AnswerForm(data, prefix=action)
    return TextForm(data, prefix=action, label=ACTIONS[action].label)


# --- small shared helpers -------------------------------------------------------------------------


def age_in_days(query: DataQuery, now: datetime) -> int:
    """Whole days a query has been (or was) open."""
    end = now if query.status in UNRESOLVED or query.closed_at is None else query.closed_at
    return max((end - query.opened_at).days, 0)


def _with_ages(queries, now: datetime) -> list[DataQuery]:
    queries = list(queries)
    for query in queries:
        query.age_days = age_in_days(query, now)
    return queries


def raise_url(record, field: str = "", next_url: str = "") -> str:
    content_type = ContentType.objects.get_for_model(record)
    params = {"record": f"{content_type.pk}:{record.pk}"}
    if field:
        params["field"] = field
    if next_url:
        params["next"] = next_url
    return f"{reverse('queries:raise')}?{urlencode(params)}"


def record_url(record) -> str:
    """The page of a CRF record (its model's ``get_absolute_url``; else its subject's page)."""
    if hasattr(record, "get_absolute_url"):
        return record.get_absolute_url()
    return services.subject_of(record).get_absolute_url()


def _raise_sites(user) -> list:
    """The sites where the user may raise queries (data managers: all)."""
    return [site for site in selectors.visible_sites(user) if access.can_raise_query(user, site)]


# --- the inbox ------------------------------------------------------------------------------------


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


# Queries a page of the inbox shows: a page renders within twice the demo's, whatever the study.
PAGE_SIZE = 25


@login_required
def inbox(request):
    """The unresolved queries of the user's sites, oldest first, with their age in days."""
    site_id = _int_or_none(request.GET.get("site"))
    status = request.GET.get("status", "")
    now = timezone.now()
    queries = selectors.inbox(request.user, site_id=site_id, status=status)
    page = Paginator(queries, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _with_ages(page.object_list, now)
    return render(
        request,
        "queries/inbox.html",
        {
            "page": page,
            "sites": selectors.visible_sites(request.user),
            "site_id": site_id,
            "status": status,
            "statuses": [(key, label) for key, (label, _) in selectors.INBOX_FILTERS.items()],
            "may_raise": bool(_raise_sites(request.user)),
            "may_report": access.can_read_exports(request.user),
            "filter_query": urlencode({"site": site_id or "", "status": status}),
        },
    )


# --- one query ------------------------------------------------------------------------------------


def _render_detail(request, query, *, bound=None, next_url=""):
    actions = services.allowed_actions(query, request.user)
    forms = [
        (name, ACTIONS[name], bound if bound is not None and bound.prefix == name else _form(name))
        for name in actions
    ]
    record = query.record
    return render(
        request,
        "queries/detail.html",
        {
            "query": query,
            "subject": query.subject,
            "record_url": record_url(record) if record is not None else "",
            "snapshot": list(selectors.shown_snapshot(query, request.user).items()),
            "check": checks_by_code().get(query.check_code),
            "age_days": age_in_days(query, timezone.now()),
            "forms": forms,
            "next": next_url,
        },
    )


@login_required
def detail(request, pk):
    query = selectors.visible_query(request.user, pk)
    return _render_detail(request, query, next_url=safe_next(request, request.GET.get("next")))


@login_required
def act(request, pk, action):
    """One transition (POST): answer, close, confirm (correct), reopen, cancel. Back to ``next``
    (the CRF page it was answered on) or the query; a refusal is a form error."""
    query = selectors.visible_query(request.user, pk)
    if action not in ACTIONS:
        raise Http404("No such action on a query.")
    if request.method != "POST":
        return redirect(query)
    spec = ACTIONS[action]
    next_url = safe_next(request, request.POST.get("next"))
    if action not in services.allowed_actions(query, request.user):
        # No form was offered: the service says why (not allowed, or not in this status).
        data = {key.removeprefix(f"{action}-"): value for key, value in request.POST.items()}
        try:
            spec.call(query, request.user, data)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect(next_url or query)
        messages.success(request, f"Query {query.pk} {spec.done}.")
        return redirect(next_url or query)
    form = _form(action, request.POST)
    if form.is_valid() and run_service(
        form, lambda: spec.call(query, request.user, form.cleaned_data)
    ):
        messages.success(request, f"Query {query.pk} {spec.done}.")
        return redirect(next_url or query)
    query = selectors.visible_query(request.user, pk)  # as it is now, beside the refused form
    return _render_detail(request, query, bound=form, next_url=next_url)


# --- raising by hand ------------------------------------------------------------------------------


def _record_from(reference: str, user):
    """``<content type id>:<object id>`` -> the record (None when malformed; 404 when unseen)."""
    try:
        content_type_id, object_id = (int(part) for part in reference.split(":"))
    except ValueError:
        return None
    return selectors.visible_record(user, content_type_id, object_id, services.queryable_models())


@login_required
def raise_query(request):
    """A manual query on one field (or the whole record) of a CRF record: data managers and the
    site's monitors."""
    record = _record_from(request.GET.get("record", ""), request.user)
    if record is None:
        return HttpResponseBadRequest(
            "Say which record the query is about: ?record=<content type id>:<record id>."
        )
    subject = services.subject_of(record)
    if refused := refuse_read_only(request, subject, access.require_raise_query):
        return refused
    next_url = safe_next(request, request.POST.get("next") or request.GET.get("next"))
    form = RaiseForm(
        request.POST or None,
        fields=services.queryable_fields(type(record)),
        initial={"field": request.GET.get("field", "")},
    )
    if request.method == "POST" and not form.is_repeat(request.user) and form.is_valid():
        query = form.save_once(
            request.user,
            lambda: services.raise_query(
                record,
                field=form.cleaned_data["field"],
                message=form.cleaned_data["message"],
                user=request.user,
            ),
        )
        if query:
            messages.success(request, f"{query} raised: the site is asked.")
            return redirect(next_url or query)
    if form.repeat_of is not None:  # a double click: the first click raised it
        messages.info(request, form.SAVED_BEFORE)
        return redirect(form.repeat_of or next_url or record_url(record))
    return render(
        request,
        "queries/raise.html",
        {
            "form": form,
            "record": record,
            "record_label": str(record),
            "record_url": record_url(record),
            "subject": subject,
            "next": next_url,
            "open_queries": _with_ages(
                selectors.unresolved_on_visible(request.user, record), timezone.now()
            ),
        },
    )


BULK_LIST_LIMIT = 500


def _bulk_result_message(result, model) -> str:
    text = f"{len(result.raised)} {'query' if len(result.raised) == 1 else 'queries'} raised."
    if result.without_record:
        names = ", ".join(s.subject_identifier for s in result.without_record)
        text += (
            f" Nothing raised for {len(result.without_record)} subject(s) with no "
            f"{model._meta.verbose_name} yet: {names}."
        )
    return text


@login_required
def bulk_raise(request):
    """The same manual query on the record of many subjects (one CRF each subject has once)."""
    sites = _raise_sites(request.user)
    if not sites:
        messages.error(request, "Only data managers and monitors raise data queries.")
        return redirect("queries:inbox")
    candidates = visible_subjects(request.user).filter(site__in=sites)
    site_id = _int_or_none(request.GET.get("site"))
    status = request.GET.get("status", "")
    shown = candidates.order_by("subject_identifier")
    if site_id is not None:
        shown = shown.filter(site_id=site_id)
    if status in SubjectStatus.values:
        shown = shown.filter(status=status)
    form = BulkRaiseForm(
        request.POST or None,
        models=services.per_subject_models(),
        fields_of=services.queryable_fields,
        subjects=candidates,
    )
    if request.method == "POST" and form.is_valid():
        model, field = form.cleaned_data["target"]
        result = run_service(
            form,
            lambda: services.raise_bulk(
                form.cleaned_data["subjects"],
                model=model,
                field=field,
                message=form.cleaned_data["message"],
                user=request.user,
            ),
        )
        if result:
            level = messages.WARNING if result.without_record else messages.SUCCESS
            messages.add_message(request, level, _bulk_result_message(result, model))
            return redirect(request.get_full_path())
    total = shown.count()
    return render(
        request,
        "queries/bulk.html",
        {
            "form": form,
            "subjects": shown[:BULK_LIST_LIMIT],
            "total": total,
            "limit": BULK_LIST_LIMIT,
            "selected": set(request.POST.getlist("subjects")),
            "sites": sites,
            "site_id": site_id,
            "status": status,
            "statuses": SubjectStatus.choices,
        },
    )


# --- the report -----------------------------------------------------------------------------------


def _with_counts(rows: list[dict]) -> list[dict]:
    for row in rows:
        row["counts"] = [row[f"n_{status}"] for status in QueryStatus.values]
    return rows


@login_required
def report(request):
    """For the study team: counts per status per site and per check, the median time to close,
    the oldest unresolved queries, and their ages as a chart (within the user's scope)."""
    if not access.can_read_exports(request.user):
        messages.error(request, "The query report is for the study team.")
        return redirect("queries:inbox")
    now = timezone.now()
    queries = selectors.visible_queries(request.user)
    by_check = _with_counts(selectors.status_counts_by_check(queries))
    for row in by_check:
        check = checks_by_code().get(row["check_code"])
        row["title"] = check.title if check else ("Raised by hand" if not row["check_code"] else "")
    median = selectors.median_days_to_close(queries)
    buckets = selectors.unresolved_by_age(queries, now)
    totals = selectors.status_totals(queries)
    return render(
        request,
        "queries/report.html",
        {
            "statuses": QueryStatus.choices,
            "by_site": _with_counts(selectors.status_counts_by_site(queries)),
            "by_check": by_check,
            "totals": [totals[f"n_{status}"] for status in QueryStatus.values],
            "total": totals["n_total"],
            "median_days": median,
            "closed_count": totals[f"n_{QueryStatus.CLOSED}"],
            "oldest": _with_ages(selectors.oldest_unresolved(queries), now),
            "buckets": buckets,
            "chart": bar_chart(buckets, bar=24, label_width=90, gap=10, room=50),
            "now": now,
        },
    )


# --- what the pages of the apps below show --------------------------------------------------------


def subject_panel(request, subject):
    """The queries panel of the subject page (``core.panels``): unresolved first."""
    now = timezone.now()
    may_raise = access.can_raise_query(request.user, subject)
    return "queries/_subject_panel.html", {
        "subject": subject,
        "queries": _with_ages(selectors.subject_queries(subject), now),
        "raise_url": raise_url(subject, next_url=request.get_full_path()) if may_raise else "",
    }


ANSWER_BUTTON = "answer-query"  # the "Answer" button beside a field of a CRF form: its query


_ANSWER_INPUT = re.compile(r"query-\d+-(reason|text)")  # the names ``_answer_input`` gives


def _answer_input(query_pk, part: str) -> str:
    """The name of an answer input sent with the CRF form (``part``: "reason" or "text")."""
    return f"query-{query_pk}-{part}"


@dataclass(frozen=True)
class PostedAnswer:
    """An answer sent with a CRF form: ``core.pages`` runs it in the transaction that saves the
    form's changes (a "data corrected" answer then sees the corrected value)."""

    query: DataQuery | None  # None: the button named no unresolved query of this record
    user: object
    reason: str
    text: str

    @property
    def field(self) -> str:
        return self.query.field if self.query is not None else ""

    def run(self) -> str:
        if self.query is None:
            raise services.QueryRefused("That query is not an unresolved query of this record.")
        services.answer_query(self.query, user=self.user, text=self.text, reason=self.reason)
        return f"Query {self.query.pk} answered."


def posted_answer(request, record) -> list[PostedAnswer]:
    """``core.pages``' ``record_form_action`` hook: the answers to queries on ``record`` sent with
    its CRF form. The "Answer" button beside a field names its query; an answer filled in beside
    another field (a response or a text) is sent too, whichever button sent the form (Enter in
    the answer's box, or "Save", saves the form): what the user typed is answered with the save,
    or refused with why, never silently dropped. A plain save (no answer typed) looks up none."""
    posted = request.POST.get(ANSWER_BUTTON)
    typed = any(
        _ANSWER_INPUT.fullmatch(name) and value.strip() for name, value in request.POST.items()
    )
    if posted is None and not typed:  # a plain save: no query looked up
        return []
    unresolved = selectors.unresolved_on_visible(request.user, record)
    answers = []
    if posted is not None:
        named = next((q for q in unresolved if str(q.pk) == posted), None)
        answers.append(_posted_answer(request, named, posted))
    for query in unresolved:
        if str(query.pk) == posted:
            continue
        answer = _posted_answer(request, query, query.pk)
        if answer.reason.strip() or answer.text.strip():
            answers.append(answer)
    return answers


def _posted_answer(request, query, posted) -> PostedAnswer:
    return PostedAnswer(
        query,
        request.user,
        request.POST.get(_answer_input(posted, "reason"), ""),
        request.POST.get(_answer_input(posted, "text"), ""),
    )


def record_field_flags(request, record, *, form=None) -> dict[str, SafeString]:
    """The CRF page's markers of the unresolved queries on ``record``: per field name (``""``:
    the record as a whole, shown at the top, with the answer forms' elements). A user who may
    answer gets a small answer form at the field; one who may raise, a "Raise a query" link.

    ``form``: the record's edit form the page shows. An answer beside one of its fields is sent
    with it (``posted_answer``): its unsaved changes are saved with the answer, never thrown
    away; the inputs show again as sent when the page comes back with errors."""
    user = request.user
    if record is None or record.pk is None or not access.can_view(user, record):
        return {}
    subject = services.subject_of(record)
    may_answer = access.can_answer_query(user, subject)
    may_raise = access.can_raise_query(user, subject)
    queries = _with_ages(selectors.unresolved_on_visible(user, record), timezone.now())
    if not queries and not may_raise:
        return {}
    here = request.get_full_path()
    sent = request.POST if request.method == "POST" else {}
    for query in queries:
        query.answerable = may_answer and query.status in AWAITING_SITE
        query.in_form = form is not None and query.field in form.fields
        query.reason_input = _answer_input(query.pk, "reason")
        query.text_input = _answer_input(query.pk, "text")
        query.sent_reason = sent.get(query.reason_input, "")
        query.sent_text = sent.get(query.text_input, "")
    context = {"reasons": ResponseReason.choices, "next": here, "answer_button": ANSWER_BUTTON}
    fields = {query.field for query in queries}
    if may_raise:
        fields |= {f.name for f in services.queryable_fields(type(record))}
    flags = {}
    for name in sorted(fields - {""}):
        link = raise_url(record, name, here) if may_raise else ""
        on_field = [q for q in queries if q.field == name]
        if not on_field:  # most fields: the link alone
            flags[name] = format_html('<a class="query-raise" href="{}">Raise a query</a>', link)
            continue
        flags[name] = render_to_string(
            "queries/_field_flag.html",
            {**context, "queries": on_field, "raise_url": link},
            request=request,
        )
    flags[""] = render_to_string(
        "queries/_record_flags.html",
        {
            **context,
            "queries": queries,
            # Forms of their own: the whole record's queries, and every query off a CRF form.
            "answerable": [q for q in queries if q.answerable and not q.in_form],
            "raise_url": raise_url(record, "", here) if may_raise else "",
        },
        request=request,
    )
    return flags
