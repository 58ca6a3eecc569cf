"""Monitoring pages: the SDV worklist (monitors), the lock console (data managers), the casebook
sign-off (investigators), and what the subject page and the CRF pages show of them (badges and
actions, through ``core.panels``' hooks). Every action is a POST that calls ``services``; a
refusal comes back as a message with the service's sentence."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from core import access
from core.errors import DomainError
from core.pages import form_page, save_form
from core.roles import Role
from subjects.models import Site
from subjects.selectors import visible_subject

from . import selectors, services
from .casebook import casebook_models
from .forms import SignCasebookForm, StateForm, StudyLockForm, VerifyForm
from .models import CASEBOOK_MEANING, LockLevel
from .sdv_plan import FULL, requirement, sdv_models
from .state import lock_state_of


def _back(request, fallback: str) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    url = request.POST.get("next") or request.GET.get("next")
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()}):
        return url
    return fallback


def _visible_record(user, content_type_id: int, object_id: int):
    try:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
    except ContentType.DoesNotExist as exc:
        raise Http404 from exc
    if model not in casebook_models():
        raise Http404
    record = access.scope_to_user(model.objects.all(), user).filter(pk=object_id).first()
    if record is None:
        raise Http404
    return record


def _refused(request, exc) -> None:
    text = exc.message if isinstance(exc, DomainError) else "; ".join(exc.messages)
    messages.error(request, text)


def _site_id(request, user) -> int | None:
    try:
        site_id = int(request.GET.get("site") or 0) or None
    except ValueError:
        return None
    return site_id


def _filter_query(site_id: int | None) -> str:
    """The filters of a list page, for its pager's links."""
    return urlencode({"site": site_id}) if site_id else ""


def _sites(user):
    return access.scope_to_user(Site.objects.all(), user).order_by("code")


# --- the subject page and the CRF pages --------------------------------------------------------


def _badges(record, *, verification=None, state=None) -> list[tuple[str, str]]:
    badges = []
    if verification is not None and verification.verified:
        badges.append(("verified", "Verified"))
    if state is not None:
        badges.append((state[0], LockLevel(state[0]).label))
    return badges


def subject_panel(request, subject):
    """The monitoring panel of the subject page: badges, SDV of its records, lock and sign-off
    actions for the people who may take them."""
    user = request.user
    rows = selectors.sdv_rows(user, subject=subject)
    signature = services.casebook_signature(subject)
    state = lock_state_of(subject)
    here = request.get_full_path()
    return "monitoring/_subject_panel.html", {
        "subject": subject,
        "rows": rows,
        "state": state,
        "signature": signature,
        "signature_valid": services.signature_is_valid(signature),
        "may_verify": access.can_verify_source_data(user, subject)
        and (state is None or state[0] != LockLevel.LOCKED),
        "may_lock": access.can_freeze_and_lock(user),
        "may_sign": access.can_sign_eligibility(user, subject)
        and services.sign_off_refusal(subject) is None,
        "levels": LockLevel.choices,
        "next": here,
    }


def record_field_flags(request, record, *, form=None) -> dict:
    """The badges of a CRF record (verified, frozen, locked; for the subject record also signed)
    at the top of its page, and the monitor's "Verify" button (outside the CRF form: the same
    whether or not the page shows one, ``form``)."""
    user = request.user
    if record is None or record.pk is None or type(record) not in casebook_models():
        return {}
    if not access.can_view(user, record):
        return {}
    verification = selectors.verification_of(record)
    state = lock_state_of(record)
    badges = _badges(record, verification=verification, state=state)
    subject = services.subject_of(record)
    if record is subject:
        signature = services.casebook_signature(subject)
        if services.signature_is_valid(signature):
            badges.append(("signed", "Casebook signed"))
    verifiable = type(record) in sdv_models()
    may_verify = (
        verifiable
        and access.can_verify_source_data(user, subject)
        and not (verification and verification.verified)
        and (state is None or state[0] != LockLevel.LOCKED)
    )
    if not badges and not may_verify:
        return {}
    html = render_to_string(
        "monitoring/_record_flags.html",
        {
            "badges": badges,
            "verification": verification,
            "state": state,
            "may_verify": may_verify,
            "planned": verifiable and requirement(record, subject.pk),
            "verify_url": reverse(
                "monitoring:verify",
                args=[ContentType.objects.get_for_model(type(record)).pk, record.pk],
            ),
            "next": request.get_full_path(),
        },
        request=request,
    )
    return {"": html}


# --- the monitor's worklist -----------------------------------------------------------------


@login_required
def worklist(request):
    """SDV worklist: per site, the records the plan asks for that are not verified yet, a page
    at a time, and the % verified per site and per form (counted by the database: the page
    reads its own rows only)."""
    user = request.user
    site_id = _site_id(request, user)
    progress = selectors.sdv_progress(user, site_id=site_id)
    waiting = selectors.Worklist(user, progress, site_id=site_id)
    page = Paginator(waiting, selectors.WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "monitoring/worklist.html",
        {
            "progress": progress,
            "page": page,
            "waiting_count": len(waiting),
            "sites": _sites(user),
            "site_id": site_id,
            "filter_query": _filter_query(site_id),
            "full": FULL,
            "may_verify": bool(access.member_site_ids(user, Role.MONITOR)),
            "may_lock": access.can_freeze_and_lock(user),
            "next": request.get_full_path(),
        },
    )


@login_required
def verify(request, content_type_id, object_id):
    """GET: the record to verify; POST: the monitor marks it verified (``services``)."""
    record = _visible_record(request.user, content_type_id, object_id)
    subject = services.subject_of(record)
    back = _back(request, reverse("monitoring:worklist"))
    form = VerifyForm(request.POST or None, initial={"next": back})
    if saved := save_form(
        request,
        form,
        save=lambda: services.verify_record(record, user=request.user),
        saved_message=lambda sdv: f"{sdv.record_label}: source data verified.",
        done_url=back,
    ):
        return saved
    label = services.record_label(record, subject)
    return form_page(
        request,
        form,
        f"Source data verification — {label}",
        subject,
        intro=f"Confirm that {label} (and its rows) match the source documents.",
        submit_label="Mark source data verified",
        cancel_url=back,
    )


# --- the data manager's lock console --------------------------------------------------------


@login_required
def lock_console(request):
    """The data manager's console: each subject's casebook state, signature, unresolved queries
    and what blocks its lock, a page at a time (the page's subjects alone are read), and what
    blocks the study lock (counted by the database)."""
    user = request.user
    if not access.can_freeze_and_lock(user):
        raise PermissionDenied
    site_id = _site_id(request, user)
    subjects = selectors.LockConsole(user, site_id=site_id)
    page = Paginator(subjects, selectors.LOCK_CONSOLE_PAGE_SIZE).get_page(request.GET.get("page"))
    lock = services.study_lock()
    locked = bool(lock and lock.locked)
    return render(
        request,
        "monitoring/lock_console.html",
        {
            "page": page,
            "lock": lock,
            "study_locked": locked,
            "blockers": [] if locked else services.study_lock_blockers(check_hashes=False),
            "sites": _sites(user),
            "site_id": site_id,
            "filter_query": _filter_query(site_id),
            "levels": LockLevel.choices,
            "study_form": StudyLockForm(initial={"action": "unlock" if locked else "lock"}),
            "next": request.get_full_path(),
        },
    )


@login_required
@require_POST
def study_lock(request):
    form = StudyLockForm(request.POST)
    if form.is_valid():
        action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
        try:
            if action == "lock":
                services.lock_study(user=request.user, reason=reason)
                messages.success(request, "The study is locked for analysis.")
            else:
                services.unlock_study(user=request.user, reason=reason)
                messages.success(request, "The study is unlocked.")
        except (DomainError, ValidationError) as exc:
            _refused(request, exc)
    else:
        messages.error(request, "Choose lock or unlock.")
    return redirect("monitoring:lock_console")


def _state_page(request, call, what: str, subject, current: str):
    """GET: the state form; POST: the service sets the state (a refusal: on the form)."""
    back = _back(request, subject.get_absolute_url())
    form = StateForm(request.POST or None, initial={"next": back})
    if saved := save_form(
        request,
        form,
        save=lambda: call(form.cleaned_data["level"], form.cleaned_data["reason"]),
        saved_message=lambda _: f"{what}: {LockLevel(form.cleaned_data['level']).label.lower()}.",
        done_url=back,
    ):
        return saved
    return form_page(
        request,
        form,
        f"Freeze or lock — {what}",
        subject,
        intro=f"{what} is {LockLevel(current).label.lower()} now. Frozen: the site can no longer "
        "change the data; data queries go on. Locked: nothing changes.",
        submit_label="Set the state",
        cancel_url=back,
    )


@login_required
def casebook_state(request, identifier):
    subject = visible_subject(request.user, identifier)
    if not access.can_freeze_and_lock(request.user):
        raise PermissionDenied
    state = selectors.casebook_state(subject)
    return _state_page(
        request,
        lambda level, reason: services.set_casebook_state(
            subject, level, user=request.user, reason=reason
        ),
        f"Subject {subject}",
        subject,
        state.state if state else LockLevel.OPEN,
    )


@login_required
def record_state(request, content_type_id, object_id):
    record = _visible_record(request.user, content_type_id, object_id)
    if not access.can_freeze_and_lock(request.user):
        raise PermissionDenied
    subject = services.subject_of(record)
    state = selectors.record_state(record)
    return _state_page(
        request,
        lambda level, reason: services.set_record_state(
            record, level, user=request.user, reason=reason
        ),
        services.record_label(record, subject),
        subject,
        state.state if state else LockLevel.OPEN,
    )


# --- the investigator's casebook sign-off ------------------------------------------------------


@login_required
def sign_casebook(request, identifier):
    subject = visible_subject(request.user, identifier)
    if not access.can_sign_eligibility(request.user, subject):
        messages.error(request, f"Only an investigator of site {subject.site.code} signs it.")
        return redirect(subject)
    form = SignCasebookForm(request.POST or None)
    if saved := save_form(
        request,
        form,
        save=lambda: services.sign_casebook(
            subject, user=request.user, password=form.cleaned_data["password"]
        ),
        saved_message="Casebook signed.",
        done_url=subject,
    ):
        return saved
    refusal = services.sign_off_refusal(subject)
    return form_page(
        request,
        form,
        f"Sign the casebook — {subject}",
        subject,
        intro=refusal
        or (
            f"Signing as {request.user.get_full_name() or request.user.get_username()}. "
            f"Meaning of the signature: “{CASEBOOK_MEANING}” It is bound to the casebook's data "
            "as they are now: any later change voids it."
        ),
    )
