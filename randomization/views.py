"""The "Randomize" action of the subject page: confirmation with the derived stratum, then the
result (randomization number and arm). The rules live in ``services``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core import access
from core.errors import AccessDenied, DomainError
from subjects.models import Subject, SubjectStatus
from subjects.selectors import visible_subject

from . import selectors, services
from .forms import ConfirmRandomizationForm


def subject_panel(request, subject):
    """The randomization panel of the subject page (``core.panels``)."""
    return "randomization/_subject_panel.html", {
        "subject": subject,
        "allocation": selectors.allocation_of(subject),
    }


@login_required
def randomize(request, identifier):
    """GET: the stratum derived from the CRF, to confirm. POST: the service randomizes, checking
    everything once, under its locks, including that the confirmed stratum still holds.

    A confirmed POST goes to the service first (it reads the subject once, under its lock); the
    page reads the subject again only to say why it refused."""
    form, preview, problem = None, None, None
    if request.method == "POST":
        form = ConfirmRandomizationForm(request.POST)
        if form.is_valid():
            done, preview, problem = _randomize_confirmed(request, identifier, form)
            if done is not None:
                return done
    subject = visible_subject(request.user, identifier)
    context = {"subject": subject, "cancel_url": subject.get_absolute_url()}
    if subject.status != SubjectStatus.SCREENING:
        allocation = selectors.allocation_of(subject)
        if allocation is not None:
            return render(
                request, "randomization/randomize.html", {**context, "allocation": allocation}
            )
    if not access.can_randomize(request.user, subject):
        context["problem"] = (
            f"Only site staff and investigators of site {subject.site.code} can randomize "
            "this subject."
        )
        return render(request, "randomization/randomize.html", context, status=403)
    if problem is None and preview is None:
        try:
            preview = services.preview_randomization(subject, request.user)
        except DomainError as exc:
            problem = str(exc)
    if problem is not None:
        context["problem"] = problem
        return render(request, "randomization/randomize.html", context)
    if form is None:
        form = ConfirmRandomizationForm(initial={"stratum": preview.stratum})
    return render(
        request, "randomization/randomize.html", {**context, "preview": preview, "form": form}
    )


def _randomize_confirmed(request, identifier, form):
    """(the redirect to the result, or None with the stratum now derived or the refusal)."""
    try:
        subject, allocation = services.randomize_visible(
            identifier, request.user, confirmed_stratum=form.cleaned_data["stratum"]
        )
    except (Subject.DoesNotExist, services.AlreadyRandomized, AccessDenied):
        return None, None, None  # said by the page as to a GET: not found, the allocation, 403
    except services.StratumChanged as exc:
        form.add_error(None, exc.message)
        form.data = form.data.copy()  # the confirmation is now for the current stratum
        form.data["stratum"] = exc.stratum
        return None, services.Preview(exc.stratum, exc.label), None
    except DomainError as exc:
        return None, None, str(exc)
    messages.success(
        request,
        f"{subject} randomized: number {allocation.randomization_number}, "
        f"arm {allocation.arm} ({allocation.arm_label}).",
    )
    return redirect("randomization:randomize", identifier=subject.subject_identifier), None, None
