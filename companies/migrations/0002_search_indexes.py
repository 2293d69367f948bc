"""Search indexes for ?search= (see companies/search.py and core/search.py): trigram GIN indexes on
PostgreSQL, an FTS5 trigram table with triggers on SQLite; nothing elsewhere."""

from django.db import migrations

from companies.search import SEARCH


def create(apps, schema_editor):
    SEARCH.create_indexes(schema_editor)


def drop(apps, schema_editor):
    SEARCH.drop_indexes(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("companies", "0001_initial")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
