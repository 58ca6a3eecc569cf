from django.conf import settings
from django.db import models


class AuthEvent(models.Model):
    """Append-only security log: logins, failed logins, and changes to users and their roles."""

    class Kind(models.TextChoices):
        LOGIN = "login", "Login"
        LOGOUT = "logout", "Logout"
        LOGIN_FAILED = "login_failed", "Failed login"
        USER_CREATED = "user_created", "User created"
        USER_CHANGED = "user_changed", "User changed"
        USER_DELETED = "user_deleted", "User deleted"
        ROLES_CHANGED = "roles_changed", "Roles changed"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        SIGNATURE_REFUSED = "signature_refused", "E-signature refused (wrong password)"
        LOCKED_OUT = "locked_out", "Account locked (too many failed attempts)"
        LOCKED_ATTEMPT = "locked_attempt", "Attempt refused: account locked"
        UNLOCKED = "unlocked", "Account unlocked"
        PASSWORD_REFUSED = "password_refused", "Password change refused (wrong old password)"
        SESSIONS_ENDED = "sessions_ended", "Sessions ended (account locked or deactivated)"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_DELETED = "token_deleted", "API token deleted"

    append_only = True

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, db_index=True)
    username = models.CharField(max_length=150, help_text="The account the event is about.")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who did it, when known (a data manager changing a user; the user logging in).",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        # The lockout reads one username's latest events on every login (accounts.lockout).
        indexes = [models.Index(fields=["username", "-at"], name="authevent_username_at")]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.get_kind_display()}: {self.username}"
