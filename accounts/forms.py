"""Login forms that say when an account is locked (``accounts.lockout``), instead of the usual
"Please enter a correct username and password"; the password change form, whose old password is
checked through the lockout like every password."""

from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.views.decorators.debug import sensitive_variables

from . import lockout
from .models import AuthEvent


class LockoutMessageMixin:
    def clean(self):
        try:
            return super().clean()
        except ValidationError:
            lock = lockout.current_lock(self.cleaned_data.get("username") or "")
            if lock is None:
                raise
            raise ValidationError(lock.message, code="locked_out") from None


class LoginForm(LockoutMessageMixin, AuthenticationForm):
    """The site's login page."""


def with_lockout_message(form_class=None):
    """The admin's login form (``core.admin`` sets its own) that also says when locked."""
    form_class = form_class or AdminAuthenticationForm
    if issubclass(form_class, LockoutMessageMixin):
        return form_class
    return type(form_class.__name__, (LockoutMessageMixin, form_class), {})


class OwnPasswordChangeForm(AdminPasswordChangeForm):
    """A logged-in user changes their own password (the admin's "Change password"): the old
    password is checked by ``lockout.check_password``, so a locked account cannot change it (the
    right old password is not even checked) and a wrong one is logged and counts toward the
    lockout, as at the logins and the e-signature prompt."""

    @sensitive_variables("old_password")
    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        try:
            right = lockout.check_password(
                self.user,
                old_password,
                attempt="password change",
                failure=AuthEvent.Kind.PASSWORD_REFUSED,
            )
        except lockout.AccountLocked as exc:
            raise ValidationError(str(exc), code="locked_out") from None
        if not right:
            raise ValidationError(
                self.error_messages["password_incorrect"], code="password_incorrect"
            )
        return old_password
