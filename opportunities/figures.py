"""The pipeline's figures of the whole book, kept up to date by the database (PostgreSQL).

The dashboard and the board sum two million opportunities' values by stage and by owner; on
PostgreSQL that is a second or more however indexed (a sum of numerics over every row). Here the
figures are kept in ``PipelineFigure``: triggers add a row of differences (minus the old
contribution, plus the new one) in the same transaction as every insert, update and delete of an
opportunity, and as every change of a customer's owner (a customer deleted or not yet inserted
counts as no owner), whatever the writer: a save, a bulk ``update()``, an import, a merge, raw SQL.
Rows are only ever added (no row is locked, so concurrent writers never wait on each other);
``fold()`` (a periodic job) sums each key's rows into one. ``rebuild()`` counts everything again
(after a load with triggers off, such as ``bench/admin_at_size.py build``).

``figure_rows()`` answers the figures per (owner, stage, close month); ``reports.pipeline_summary``
and ``reports.pipeline_groups`` read them for the whole book or one owner's (a rep's own,
``reports.book_of``) and compute from the table otherwise (SQLite, a filtered list), so that both
ways give the same numbers (``tests/opportunities/test_figures.py``).
"""

from django.db import connection, transaction

TABLE = "opportunities_pipelinefigure"

_CONTRIBUTION = """
    INSERT INTO opportunities_pipelinefigure (owner_id, stage, close_month, count, total_value, weighted_value)
    SELECT (SELECT c.owner_id FROM customers_customer c WHERE c.id = {row}.customer_id), {row}.stage,
        date_trunc('month', {row}.expected_close_date)::date, {sign}1, {sign}{row}.value,
        {sign}({row}.value * {row}.probability * 0.01);
"""

_MOVE = """
    INSERT INTO opportunities_pipelinefigure (owner_id, stage, close_month, count, total_value, weighted_value)
    SELECT owner, o.stage, date_trunc('month', o.expected_close_date)::date, sign * count(*),
        sign * sum(o.value), sign * sum(o.value * o.probability * 0.01)
    FROM opportunities_opportunity o, (VALUES (old_owner, -1), (new_owner, 1)) AS moved(owner, sign)
    WHERE o.customer_id = customer
    GROUP BY owner, sign, o.stage, date_trunc('month', o.expected_close_date);
"""

CREATE_STATEMENTS = [
    f"""
    CREATE OR REPLACE FUNCTION opportunities_pipelinefigure_track() RETURNS trigger AS $$
    BEGIN
        IF TG_OP IN ('UPDATE', 'DELETE') THEN {_CONTRIBUTION.format(row="OLD", sign="-")} END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN {_CONTRIBUTION.format(row="NEW", sign="")} END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION opportunities_pipelinefigure_owner() RETURNS trigger AS $$
    DECLARE
        customer bigint;
        old_owner integer;
        new_owner integer;
    BEGIN
        IF TG_OP = 'DELETE' THEN customer := OLD.id; ELSE customer := NEW.id; END IF;
        IF TG_OP IN ('UPDATE', 'DELETE') THEN old_owner := OLD.owner_id; END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') THEN new_owner := NEW.owner_id; END IF;
        IF old_owner IS DISTINCT FROM new_owner THEN """
    + _MOVE
    + """ END IF;
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    "CREATE TRIGGER opportunities_pipelinefigure_write AFTER INSERT OR DELETE ON opportunities_opportunity "
    "FOR EACH ROW EXECUTE FUNCTION opportunities_pipelinefigure_track()",
    "CREATE TRIGGER opportunities_pipelinefigure_change "
    "AFTER UPDATE OF stage, value, probability, expected_close_date, customer_id ON opportunities_opportunity "
    "FOR EACH ROW WHEN ((OLD.stage, OLD.value, OLD.probability, OLD.expected_close_date, OLD.customer_id) "
    "IS DISTINCT FROM (NEW.stage, NEW.value, NEW.probability, NEW.expected_close_date, NEW.customer_id)) "
    "EXECUTE FUNCTION opportunities_pipelinefigure_track()",
    "CREATE TRIGGER opportunities_pipelinefigure_customer AFTER INSERT OR DELETE ON customers_customer "
    "FOR EACH ROW EXECUTE FUNCTION opportunities_pipelinefigure_owner()",
    "CREATE TRIGGER opportunities_pipelinefigure_customer_owner AFTER UPDATE OF owner_id ON customers_customer "
    "FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) "
    "EXECUTE FUNCTION opportunities_pipelinefigure_owner()",
]

DROP_STATEMENTS = [
    "DROP TRIGGER IF EXISTS opportunities_pipelinefigure_customer_owner ON customers_customer",
    "DROP TRIGGER IF EXISTS opportunities_pipelinefigure_customer ON customers_customer",
    "DROP TRIGGER IF EXISTS opportunities_pipelinefigure_change ON opportunities_opportunity",
    "DROP TRIGGER IF EXISTS opportunities_pipelinefigure_write ON opportunities_opportunity",
    "DROP FUNCTION IF EXISTS opportunities_pipelinefigure_owner()",
    "DROP FUNCTION IF EXISTS opportunities_pipelinefigure_track()",
]

_GROUPED = """
    SELECT owner_id, stage, close_month, sum(count)::bigint, sum(total_value), sum(weighted_value)
    FROM {source} GROUP BY owner_id, stage, close_month HAVING sum(count) <> 0
"""

_COUNTED = """
    SELECT c.owner_id, o.stage, date_trunc('month', o.expected_close_date)::date, count(*), sum(o.value),
        sum(o.value * o.probability * 0.01)
    FROM opportunities_opportunity o LEFT JOIN customers_customer c ON c.id = o.customer_id
    GROUP BY 1, 2, 3
"""

_COLUMNS = "owner_id, stage, close_month, count, total_value, weighted_value"


def kept(using=None):
    """Whether the figures are kept (PostgreSQL)."""
    return (connection if using is None else transaction.get_connection(using)).vendor == "postgresql"


def figure_rows():
    """``(owner_id, stage, close_month, count, total_value, weighted_value)`` of every key with deals."""
    with connection.cursor() as cursor:
        cursor.execute(_GROUPED.format(source=TABLE))
        return cursor.fetchall()


def fold():
    """Sum each key's rows into one. Rows added meanwhile by other transactions are left as they are."""
    if not kept():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"WITH gone AS (DELETE FROM {TABLE} RETURNING *) INSERT INTO {TABLE} ({_COLUMNS}) "
            + _GROUPED.format(source="gone")
        )


def rebuild():
    """Count every opportunity again (after a load made with the triggers off)."""
    if not kept():
        return
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("LOCK TABLE opportunities_opportunity, customers_customer IN SHARE MODE")
        cursor.execute(f"DELETE FROM {TABLE}")
        cursor.execute(f"INSERT INTO {TABLE} ({_COLUMNS}) {_COUNTED}")


def counted_rows():
    """The figures as counted from the opportunities themselves (what ``figure_rows`` must equal)."""
    with connection.cursor() as cursor:
        cursor.execute(_COUNTED)
        return cursor.fetchall()
