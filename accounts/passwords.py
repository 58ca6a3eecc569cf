"""In production a password set with ``set_password`` is checked against
``AUTH_PASSWORD_VALIDATORS`` when the user is saved, whatever code set it (a script, a shell): a
weak one is refused before it is stored. The admin's forms, ``changepassword`` and
``seed_demo --password`` check it themselves, everywhere.

One path Django leaves open, documented in the README: ``createsuperuser --noinput`` stores
``DJANGO_SUPERUSER_PASSWORD`` unchecked (the manager hashes it without ``set_password``), and the
interactive ``createsuperuser`` offers to bypass the check. Create the first superuser
interactively and refuse the bypass, or set its password with ``changepassword`` afterwards.
Outside production (demo, development, the test suite's fixtures) the check is left to the paths.
"""

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.db.models.signals import pre_save
from django.dispatch import receiver


@receiver(pre_save, sender=get_user_model(), dispatch_uid="edc_validate_new_password")
def validate_new_password(sender, instance, raw=False, **kwargs):
    new_password = getattr(instance, "_password", None)  # set by set_password() until saved
    if raw or new_password is None or not settings.PRODUCTION:
        return
    password_validation.validate_password(new_password, instance)
