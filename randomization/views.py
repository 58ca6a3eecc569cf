"""The "Randomize" action of the subject page: confirmation with the derived stratum, then the
result (randomization number and arm). The rules live in ``services``."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from core import access
from core.errors import DomainError
from core.forms import run_service
from subjects.selectors import visible_subject

from . import services
from .forms import ConfirmRandomizationForm


def subject_panel(request, subject):
    """The randomization panel of the subject page (``core.panels``)."""
    return "randomization/_subject_panel.html", {
        "subject": subject,
        "allocation": services.allocation_of(subject),
    }


@login_required
def randomize(request, identifier):
    subject = visible_subject(request.user, identifier)
    context = {"subject": subject, "cancel_url": subject.get_absolute_url()}
    allocation = services.allocation_of(subject)
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

    try:
        preview = services.preview_randomization(subject, request.user)
    except DomainError as exc:
        context["problem"] = str(exc)
        return render(request, "randomization/randomize.html", context)

    form = ConfirmRandomizationForm(request.POST or None, initial={"stratum": preview.stratum})
    if request.method == "POST" and form.is_valid():
        if form.cleaned_data["stratum"] != preview.stratum:
            form.add_error(
                None,
                f"The stratification data changed since this page was opened: the stratum is "
                f"now {preview.stratum} ({preview.label}). Check it and confirm again.",
            )
            form.data = form.data.copy()  # the confirmation is now for the current stratum
            form.data["stratum"] = preview.stratum
        else:
            allocation = run_service(form, lambda: services.randomize(subject, request.user))
            if allocation is not None:
                messages.success(
                    request,
                    f"{subject} randomized: number {allocation.randomization_number}, "
                    f"arm {allocation.arm} ({allocation.arm_label}).",
                )
                return redirect("randomization:randomize", identifier=subject.subject_identifier)
    return render(
        request, "randomization/randomize.html", {**context, "preview": preview, "form": form}
    )
