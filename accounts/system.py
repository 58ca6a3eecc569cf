"""The account the EDC acts as when no person does (the edit checks): what it writes is never
attributed to a person. It cannot log in (inactive, no usable password)."""

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

SYSTEM_USERNAME = "edc-system"


def system_user():
    """The system account, made on first use (two first uses at once: one makes it)."""
    User = get_user_model()
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is not None:
        return user
    user = User(username=SYSTEM_USERNAME, first_name="EDC", last_name="system", is_active=False)
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # made meanwhile by another process
        return User.objects.get(username=SYSTEM_USERNAME)
    return user
