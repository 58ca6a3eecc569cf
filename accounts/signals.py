"""Security log receivers: logins, failed logins, user, role and password changes, API tokens.

A deactivated account's open sessions are ended here too (any path that saves ``is_active=False``:
the admin, a script), as a lockout ends them (``lockout.end_user_sessions``): a security reaction
of every save, like its log entry, not a step of a domain workflow.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver
from rest_framework.authtoken.models import Token, TokenProxy

from . import lockout
from .events import log_event
from .models import AuthEvent

User = get_user_model()
# User fields whose change is a security event (last_login changes on every login: not one).
WATCHED_USER_FIELDS = (
    "username",
    "first_name",
    "last_name",
    "email",
    "is_active",
    "is_staff",
    "is_superuser",
)


@receiver(user_logged_in, dispatch_uid="edc_log_login")
def on_login(sender, request, user, **kwargs):
    log_event(AuthEvent.Kind.LOGIN, user.get_username(), actor=user, request=request)


@receiver(user_logged_out, dispatch_uid="edc_log_logout")
def on_logout(sender, request, user, **kwargs):
    if user is not None:
        log_event(AuthEvent.Kind.LOGOUT, user.get_username(), actor=user, request=request)


@receiver(user_login_failed, dispatch_uid="edc_log_login_failed")
def on_login_failed(sender, credentials, request=None, **kwargs):
    # Logged as a failed login, or as an attempt on a locked account; may lock it (lockout).
    lockout.login_failed(credentials.get("username", ""), request=request)


@receiver(pre_save, sender=User, dispatch_uid="edc_user_before")
def remember_user_before(sender, instance, **kwargs):
    instance._edc_before = None
    if instance.pk:
        before = User.objects.filter(pk=instance.pk).values(*WATCHED_USER_FIELDS, "password")
        instance._edc_before = before.first()


@receiver(post_save, sender=User, dispatch_uid="edc_user_after")
def log_user_saved(sender, instance, created, **kwargs):
    if created:
        log_event(
            AuthEvent.Kind.USER_CREATED,
            instance.get_username(),
            fields={f: getattr(instance, f) for f in WATCHED_USER_FIELDS},
        )
        return
    before = getattr(instance, "_edc_before", None)
    if not before:
        return
    changes = {
        field: {"old": before[field], "new": getattr(instance, field)}
        for field in WATCHED_USER_FIELDS
        if before[field] != getattr(instance, field)
    }
    if changes:
        log_event(AuthEvent.Kind.USER_CHANGED, instance.get_username(), changes=changes)
    if before["is_active"] and not instance.is_active:
        lockout.end_user_sessions(instance, why="deactivated")
    if before["password"] != instance.password:
        log_event(AuthEvent.Kind.PASSWORD_CHANGED, instance.get_username())


@receiver(post_delete, sender=User, dispatch_uid="edc_user_deleted")
def log_user_deleted(sender, instance, **kwargs):
    log_event(AuthEvent.Kind.USER_DELETED, instance.get_username())


@receiver(m2m_changed, sender=User.groups.through, dispatch_uid="edc_roles_changed")
def log_roles_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    from django.contrib.auth.models import Group

    if reverse:  # group.user_set changed: instance is the group, pk_set the users
        users = User.objects.filter(pk__in=pk_set or [])
        for user in users:
            log_event(
                AuthEvent.Kind.ROLES_CHANGED,
                user.get_username(),
                action=action.removeprefix("post_"),
                groups=[instance.name],
            )
        return
    names = sorted(Group.objects.filter(pk__in=pk_set or []).values_list("name", flat=True))
    log_event(
        AuthEvent.Kind.ROLES_CHANGED,
        instance.get_username(),
        action=action.removeprefix("post_"),
        groups=names,
        now=sorted(instance.groups.values_list("name", flat=True)),
    )


# --- the roles themselves: a group's name and permissions; a user's own permissions ----------


def _permission_names(pks) -> list[str]:
    found = Permission.objects.filter(pk__in=pks or []).select_related("content_type")
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in found)


def _permissions_changed(instance, action, reverse, pk_set, *, owners, attribute, log_one):
    """``log_one(owner, verb, permission names)`` for each group (or user: ``owners``) whose
    permissions (``attribute``) were added, removed or cleared. ``clear()`` names no keys after
    the fact: they are read before."""
    if action == "pre_clear" and not reverse:
        instance._edc_cleared = list(getattr(instance, attribute).values_list("pk", flat=True))
        return
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    verb = action.removeprefix("post_")
    if reverse:  # permission.<owner>_set changed: instance is the permission, pk_set the owners
        for owner in owners.filter(pk__in=pk_set or []):
            log_one(owner, verb, _permission_names([instance.pk]))
        return
    pks = getattr(instance, "_edc_cleared", []) if verb == "clear" else pk_set
    log_one(instance, verb, _permission_names(pks))


@receiver(m2m_changed, sender=Group.permissions.through, dispatch_uid="edc_role_perms_changed")
def log_role_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A role's permissions changed: the security log says which, by whom and why (the admin's
    reason for change, ``events.change_reason``). ``username`` is empty: no account is meant."""

    def log_one(group, verb, permissions):
        log_event(
            AuthEvent.Kind.ROLES_CHANGED, "", role=group.name, action=verb, permissions=permissions
        )

    _permissions_changed(
        instance,
        action,
        reverse,
        pk_set,
        owners=Group.objects.all(),
        attribute="permissions",
        log_one=log_one,
    )


@receiver(m2m_changed, sender=User.user_permissions.through, dispatch_uid="edc_user_perms")
def log_user_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    def log_one(user, verb, permissions):
        log_event(
            AuthEvent.Kind.USER_CHANGED, user.get_username(), action=verb, permissions=permissions
        )

    _permissions_changed(
        instance,
        action,
        reverse,
        pk_set,
        owners=User.objects.all(),
        attribute="user_permissions",
        log_one=log_one,
    )


@receiver(pre_save, sender=Group, dispatch_uid="edc_role_before")
def remember_role_name(sender, instance, **kwargs):
    names = Group.objects.filter(pk=instance.pk).values_list("name", flat=True)
    instance._edc_old_name = names.first() if instance.pk else None


@receiver(post_save, sender=Group, dispatch_uid="edc_role_saved")
def log_role_saved(sender, instance, created, **kwargs):
    old = getattr(instance, "_edc_old_name", None)
    if created:
        log_event(AuthEvent.Kind.ROLES_CHANGED, "", role=instance.name, action="created")
    elif old is not None and old != instance.name:
        log_event(
            AuthEvent.Kind.ROLES_CHANGED, "", role=instance.name, action="renamed", old_name=old
        )


@receiver(post_delete, sender=Group, dispatch_uid="edc_role_deleted")
def log_role_deleted(sender, instance, **kwargs):
    log_event(AuthEvent.Kind.ROLES_CHANGED, "", role=instance.name, action="deleted")


# --- API tokens: whoever creates or deletes one (the admin, ``drf_create_token``, a script) ----
# The key itself is never logged. The admin saves the proxy model (``TokenProxy``).


@receiver(post_save, sender=Token, dispatch_uid="edc_token_created")
@receiver(post_save, sender=TokenProxy, dispatch_uid="edc_token_proxy_created")
def log_token_created(sender, instance, created, **kwargs):
    if created:
        log_event(AuthEvent.Kind.TOKEN_CREATED, instance.user.get_username())


@receiver(post_delete, sender=Token, dispatch_uid="edc_token_deleted")
@receiver(post_delete, sender=TokenProxy, dispatch_uid="edc_token_proxy_deleted")
def log_token_deleted(sender, instance, **kwargs):
    log_event(AuthEvent.Kind.TOKEN_DELETED, instance.user.get_username())
