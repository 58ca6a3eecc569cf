"""The security log's "Unlock" admin action: a data manager ends a lockout early, with a reason.

Select the account's events in the security log (filter "Account locked") -> action "Unlock the
selected accounts" -> a page lists the locked accounts among them and asks the reason -> each is
unlocked (``accounts.lockout.unlock``), an "Account unlocked" entry with the reason in the log.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.template.response import TemplateResponse

from core.errors import DomainError

from . import lockout


class UnlockForm(forms.Form):
    reason = forms.CharField(
        label="Reason for unlocking",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="E.g. \u201cUser confirmed by phone, forgot the password\u201d. "
        "Written to the security log.",
    )


@admin.action(description="Unlock the selected accounts (with a reason)")
def unlock_accounts(modeladmin, request, queryset):
    if not lockout.may_unlock(request.user):
        modeladmin.message_user(
            request, "Only a data manager can unlock an account.", messages.ERROR
        )
        return None
    usernames = sorted(set(queryset.values_list("username", flat=True)))
    locked = {name: lock for name in usernames if (lock := lockout.current_lock(name))}
    if not locked:
        modeladmin.message_user(
            request,
            "None of the selected accounts is locked: nothing to unlock.",
            messages.WARNING,
        )
        return None
    form = UnlockForm(request.POST if request.POST.get("post") == "yes" else None)
    if form.is_valid():
        done = []
        for name in locked:
            try:
                lockout.unlock(name, by=request.user, reason=form.cleaned_data["reason"])
            except DomainError as exc:
                form.add_error("reason", str(exc))
                break
            done.append(name)
        if form.is_valid() and done:
            modeladmin.message_user(
                request, f"Unlocked: {', '.join(done)}. The security log records it."
            )
            return None
    return TemplateResponse(
        request,
        "accounts/unlock_accounts.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": "Unlock accounts",
            "opts": modeladmin.model._meta,
            "locks": list(locked.values()),
            "queryset": queryset,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        },
    )
