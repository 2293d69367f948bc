"""The embedded queue: huey's SQLite storage, tuned for a queue that is not the source of truth.

Every job the CRM enqueues can be rebuilt from the database (the event sweep
re-sends undispatched events), so the queue file need not survive a power cut
with its last jobs: it runs with ``synchronous=NORMAL`` (in WAL mode, consistent
after any crash, without an fsync per enqueue), which takes the enqueue from
milliseconds to tens of microseconds (docs/benchmarks.md).
"""

from huey import SqliteHuey
from huey.storage import SqliteStorage


class QueueStorage(SqliteStorage):
    def _create_connection(self):
        connection = super()._create_connection()
        connection.execute("pragma synchronous=NORMAL")
        return connection


class EmbeddedHuey(SqliteHuey):
    storage_class = QueueStorage
