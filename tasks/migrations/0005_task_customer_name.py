from django.conf import settings
from django.db import migrations, models

from tasks import customer_name


def install(apps, schema_editor):
    customer_name.install(schema_editor.connection)


def uninstall(apps, schema_editor):
    customer_name.uninstall(schema_editor.connection)


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0013_dashboard_indexes'),
        ('opportunities', '0013_open_customer_index'),
        ('tasks', '0004_search_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='task',
            name='customer_name',
            field=models.CharField(db_default='', default='', editable=False, max_length=200, verbose_name='customer name'),
        ),
        # The triggers that keep it (tasks/customer_name.py), and every task's name set.
        migrations.RunPython(install, uninstall, elidable=False),
    ]
