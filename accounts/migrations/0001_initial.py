import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AuthEvent",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("kind", models.CharField(choices=[("login", "Login"), ("logout", "Logout"), ("login_failed", "Failed login"), ("user_created", "User created"), ("user_changed", "User changed"), ("user_deleted", "User deleted"), ("roles_changed", "Roles changed"), ("password_changed", "Password changed")], db_index=True, max_length=20)),
                ("username", models.CharField(help_text="The account the event is about.", max_length=150)),
                ("ip_address", models.GenericIPAddressField(blank=True, null=True)),
                ("detail", models.JSONField(blank=True, default=dict)),
                ("actor", models.ForeignKey(blank=True, help_text="Who did it, when known (a data manager changing a user; the user logging in).", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={"ordering": ["-at", "-id"]},
        ),
    ]
