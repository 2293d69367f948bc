"""Rows locked for the rest of a transaction before they are read, by the writers that read, compare, then write."""

from django.core.exceptions import EmptyResultSet
from django.db import connections


def lock_rows(queryset, *, delete=False):
    """Lock the rows of ``queryset`` until the transaction ends, so that what is read of them next stays as read.

    A save posted from an admin page compares the values the page showed with the stored ones, then
    writes; an import looks its rows' records up, then writes them. The rows are locked first
    (``SELECT … FOR UPDATE``, by primary key in their order, so that two writers locking the same rows
    queue rather than deadlock), and read after. A writer that locked them first is waited for, and its
    change is what the comparison sees (and refuses); a row it deleted is read as gone, and is not
    written again. The lock is taken by a plain query of the table: ``queryset`` may carry joins, a
    nullable side of an outer join or a ``GROUP BY``, which cannot be locked. On SQLite a write
    transaction already holds the database's one write lock from its ``BEGIN`` (``core/sqlite``):
    nothing else can change a row meanwhile, and nothing is run. Outside a transaction there is nothing
    to hold a lock: nothing is run either.

    The lock is ``FOR NO KEY UPDATE``, what an UPDATE of the rows takes: another transaction may still
    insert a row that points at them (its foreign key check takes ``FOR KEY SHARE``) rather than wait,
    or deadlock with a page that locks the rows it points from. ``delete=True`` takes ``FOR UPDATE``,
    what their DELETE takes, for a caller about to delete them.
    """
    connection = connections[queryset.db]
    if not connection.features.has_select_for_update or connection.get_autocommit():
        return
    rows = queryset.model._base_manager.using(queryset.db).filter(pk__in=queryset.order_by().values("pk"))
    list(locking(rows, delete=delete).values_list("pk", flat=True))


def locking(queryset, *, delete=False):
    """``queryset`` read with its rows locked as ``lock_rows`` locks them, in the one query: for a writer that needs
    the rows it is about to change (or, ``delete=True``, delete).

    ``FOR NO KEY UPDATE`` (``FOR UPDATE`` with ``delete=True``), by primary key in their order, the rows of the
    queryset's own table only (``OF``: not those of the tables it joins, which its writer does not change). A
    ``GROUP BY`` cannot be locked: lock such a queryset's rows with ``lock_rows``, then read it. It is Django's
    ``select_for_update``: read in a transaction (PostgreSQL refuses it outside one); SQLite locks nothing.
    """
    return queryset.order_by("pk").select_for_update(no_key=not delete, of=("self",))


def holds_keys(using):
    """Whether ``lock_keys`` takes its locks on the database ``using`` now: PostgreSQL, in a transaction."""
    connection = connections[using]
    return connection.vendor == "postgresql" and not connection.get_autocommit()


def lock_keys(*querysets):
    """Hold the rows of ``querysets`` ``FOR KEY SHARE`` until the transaction ends, each by primary key in their
    order, the querysets in the order given (one database).

    The lock PostgreSQL's check of a foreign key takes on the row it points at, here taken before the
    write rather than at its COMMIT (Django's keys are deferred). It waits for a delete of the rows, or a
    writer that locked them ``FOR UPDATE`` to delete them, and keeps them from being deleted, but holds up
    no save of theirs (``FOR NO KEY UPDATE``, ``lock_rows``), nor other writers pointing at them. The ORM
    has no ``FOR KEY SHARE``: it is added to the query's SQL, as ``core.tags.current_tags`` does. Several
    querysets (the rows of several tables, highest parent first) are one statement: each a ``WITH`` query
    of its own, read to the end one after the other. Nothing is run on SQLite, nor outside a transaction
    (see ``lock_rows``).
    """
    if not querysets or not holds_keys(querysets[0].db):
        return
    statements, params = [], []
    for queryset in querysets:
        rows = queryset.model._base_manager.using(queryset.db).filter(pk__in=queryset.order_by().values("pk"))
        try:
            sql, rows_params = rows.order_by("pk").values_list("pk", flat=True).query.sql_with_params()
        except EmptyResultSet:
            continue
        statements.append(f"{sql} FOR KEY SHARE")
        params.extend(rows_params)
    if len(statements) > 1:
        # A locking SELECT may not be a branch of a UNION: each is a WITH query, and the UNION ALL reads
        # them whole, in their order (a WITH query that locks rows is never folded into the outer one).
        held = ", ".join(f"held_{n} AS ({sql})" for n, sql in enumerate(statements))
        counts = " UNION ALL ".join(f"SELECT count(*) FROM held_{n}" for n in range(len(statements)))
        statements = [f"WITH {held} {counts}"]
    if statements:
        with connections[querysets[0].db].cursor() as cursor:
            cursor.execute(statements[0], params)


# PostgreSQL's SQLSTATE for "deadlock detected".
DEADLOCK_DETECTED = "40P01"


def is_deadlock(exc):
    """Whether ``exc`` (a Django database error) is PostgreSQL aborting this transaction in a deadlock.

    Writers lock in a set order (tags, then records, each by primary key) so that none should meet
    one; should two still wait for each other, the one aborted is answered as a conflict, nothing of
    it written, rather than as a fault.
    """
    cause = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == DEADLOCK_DETECTED:
            return True
        cause = cause.__cause__
    return False
