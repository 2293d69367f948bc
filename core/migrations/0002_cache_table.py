from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    # The database cache (throttle counters by default) needs its table; this is
    # a no-op for other cache backends and for tables that already exist.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("core", "0001_idempotency_key")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop, elidable=True)]
