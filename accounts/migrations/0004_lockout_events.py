# Brute-force protection (accounts.lockout): the lockout events, and an index for reading one
# username's latest events on every login.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_signature_refused_event'),
    ]

    operations = [
        migrations.AlterField(
            model_name='authevent',
            name='kind',
            field=models.CharField(choices=[('login', 'Login'), ('logout', 'Logout'), ('login_failed', 'Failed login'), ('user_created', 'User created'), ('user_changed', 'User changed'), ('user_deleted', 'User deleted'), ('roles_changed', 'Roles changed'), ('password_changed', 'Password changed'), ('signature_refused', 'E-signature refused (wrong password)'), ('locked_out', 'Account locked (too many failed attempts)'), ('locked_attempt', 'Attempt refused: account locked'), ('unlocked', 'Account unlocked')], db_index=True, max_length=20),
        ),
        migrations.AddIndex(
            model_name='authevent',
            index=models.Index(fields=['username', '-at'], name='authevent_username_at'),
        ),
    ]
