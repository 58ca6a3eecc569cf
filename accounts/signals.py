"""Security log receivers: logins, failed logins, user, role and password changes."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

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
    log_event(AuthEvent.Kind.LOGIN_FAILED, credentials.get("username", ""), request=request)


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
