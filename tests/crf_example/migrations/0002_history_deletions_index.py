from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crf_example', '0001_initial'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='historicalvitalsigns',
            index=models.Index(condition=models.Q(('history_type', '-')), fields=['history_date', 'id'], name='crf_example_del_ca88b73d5b'),
        ),
    ]
