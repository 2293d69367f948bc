"""Migration operations for indexes on tables that may be big.

A plain ``CREATE INDEX`` holds every write to its table until the index is built: minutes on a
table of millions of rows, during a deploy. :class:`AddIndexConcurrently` builds it with
``CREATE INDEX CONCURRENTLY`` on PostgreSQL (writes go on; the build reads the table twice) and
with a plain ``CREATE INDEX`` on SQLite, which has no such thing and whose tables are small.
PostgreSQL cannot build an index concurrently inside a transaction: a migration with one of these
declares ``atomic = False`` and holds nothing else that must be atomic.
"""

from django.contrib.postgres.operations import AddIndexConcurrently as PostgresAddIndexConcurrently
from django.db.migrations.operations import AddIndex


class AddIndexConcurrently(PostgresAddIndexConcurrently):
    """``AddIndex``, built concurrently on PostgreSQL and plainly elsewhere (in a migration with ``atomic = False``)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_forwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            return super().database_backwards(app_label, schema_editor, from_state, to_state)
        return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
