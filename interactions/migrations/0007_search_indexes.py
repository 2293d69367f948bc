"""Search indexes for the admin's search box (see interactions/search.py and core/search.py): a trigram GIN
index on PostgreSQL, an FTS5 trigram table with triggers on SQLite; nothing elsewhere."""

from django.db import migrations

from interactions.search import SEARCH


def create(apps, schema_editor):
    SEARCH.create_indexes(schema_editor)


def drop(apps, schema_editor):
    SEARCH.drop_indexes(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("interactions", "0006_admin_sort_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
