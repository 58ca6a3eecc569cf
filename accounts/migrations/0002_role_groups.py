"""Create the six role groups. Their permissions are synced after every migrate
(accounts.roles.sync_role_permissions), because later apps add models and permissions."""

from django.db import migrations

ROLES = ["site_staff", "investigator", "data_manager", "monitor", "sponsor", "statistician"]


def create_groups(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, migrations.RunPython.noop)]
