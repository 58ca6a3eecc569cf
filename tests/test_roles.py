import pytest
from django.contrib.auth.models import Group, Permission

from accounts.roles import role_permissions
from core.roles import Role

pytestmark = pytest.mark.django_db


def test_six_role_groups_hold_exactly_their_declared_permissions():
    assert set(Group.objects.values_list("name", flat=True)) >= set(Role.values)
    for role, declared in role_permissions().items():
        for name in declared:
            app_label, codename = name.split(".")
            assert Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).exists(), f"{role} declares {name}, which does not exist"
        held = {
            f"{p.content_type.app_label}.{p.codename}"
            for p in Group.objects.get(name=role).permissions.select_related("content_type")
        }
        assert held == set(declared)


def test_nobody_but_a_superuser_may_delete_audited_records():
    deletes = Permission.objects.filter(codename__startswith="delete_", group__isnull=False)
    assert list(deletes.values_list("codename", flat=True)) == []
