"""Login forms that say when an account is locked (``accounts.lockout``), instead of the usual
"Please enter a correct username and password"."""

from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from . import lockout


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
