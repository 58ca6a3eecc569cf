# Issue 20: wrong old passwords of a password change, the sessions a lockout or deactivation ends,
# and API tokens created and deleted go to the security log.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0004_lockout_events'),
    ]

    operations = [
        migrations.AlterField(
            model_name='authevent',
            name='kind',
            field=models.CharField(choices=[('login', 'Login'), ('logout', 'Logout'), ('login_failed', 'Failed login'), ('user_created', 'User created'), ('user_changed', 'User changed'), ('user_deleted', 'User deleted'), ('roles_changed', 'Roles changed'), ('password_changed', 'Password changed'), ('signature_refused', 'E-signature refused (wrong password)'), ('locked_out', 'Account locked (too many failed attempts)'), ('locked_attempt', 'Attempt refused: account locked'), ('unlocked', 'Account unlocked'), ('password_refused', 'Password change refused (wrong old password)'), ('sessions_ended', 'Sessions ended (account locked or deactivated)'), ('token_created', 'API token created'), ('token_deleted', 'API token deleted')], db_index=True, max_length=20),
        ),
    ]
