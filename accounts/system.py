"""The account the EDC acts as when no person does (the edit checks): what it writes is never
attributed to a person. It cannot log in (inactive, no usable password)."""

from django.contrib.auth import get_user_model

SYSTEM_USERNAME = "edc-system"


def system_user():
    User = get_user_model()
    user = User.objects.filter(username=SYSTEM_USERNAME).first()
    if user is None:
        user = User(username=SYSTEM_USERNAME, first_name="EDC", last_name="system", is_active=False)
        user.set_unusable_password()
        user.save()
    return user
