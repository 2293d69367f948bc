"""On PostgreSQL, each event row remembers the transaction that wrote it, so the feed can serve events
in the order their transactions committed (``core/api/events.py``).

Event ids come from a sequence when the row is inserted, not when its transaction commits: a long
transaction (a batch of 100, an import) may commit an event id lower than ones a feed client has
already been served, and a cursor by id alone would skip it. ``txid`` is ``pg_current_xact_id()``,
filled in by the database; the feed serves only events of transactions older than every transaction
still running, ordered by (``txid``, ``id``). SQLite runs one writing transaction at a time, so ids
are already in commit order there and the column is not needed.
"""

from django.db import migrations

COLUMN = "txid"
INDEX = "core_event_commit_order_idx"


def add_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("core", "Event")._meta.db_table)
    # Rows already there get this migration's transaction id: one group, in id order.
    schema_editor.execute(f"ALTER TABLE {table} ADD COLUMN {COLUMN} xid8 NOT NULL DEFAULT pg_current_xact_id()")
    schema_editor.execute(f"CREATE INDEX {INDEX} ON {table} ({COLUMN}, id)")


def drop_column(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = schema_editor.quote_name(apps.get_model("core", "Event")._meta.db_table)
    schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")
    schema_editor.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {COLUMN}")


class Migration(migrations.Migration):
    dependencies = [("core", "0006_user_preferences")]

    operations = [migrations.RunPython(add_column, drop_column)]
