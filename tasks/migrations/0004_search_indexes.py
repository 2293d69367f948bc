"""Search indexes for the admin's search box (see tasks/search.py and core/search.py): trigram GIN
indexes on PostgreSQL, an FTS5 trigram table with triggers on SQLite; nothing elsewhere."""

from django.db import migrations

from tasks.search import SEARCH


def create(apps, schema_editor):
    SEARCH.create_indexes(schema_editor)


def drop(apps, schema_editor):
    SEARCH.drop_indexes(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("tasks", "0003_admin_sort_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
