"""Search indexes for ?search= (see customers/search.py): trigram GIN indexes on
PostgreSQL, an FTS5 trigram table with triggers on SQLite; nothing elsewhere."""

from django.db import migrations

from customers import search


def create(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in search.postgres_index_statements():
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            search.ensure_sqlite_search_index(cursor)


def drop(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for statement in search.postgres_drop_statements():
                cursor.execute(statement)
        elif connection.vendor == "sqlite":
            search.drop_sqlite_search_index(cursor)


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0003_staff_groups"),
    ]

    operations = [
        migrations.RunPython(create, drop, elidable=False),
    ]
