"""ORM queries compiled once per process and run with other values for their parameters.

Compiling a queryset (cloning it, resolving its expressions, writing its SQL and
working out its converters) costs several times what SQLite spends running a
small statement. :class:`PreparedValues` does it once: the query is built with
sentinel values, and each run puts the real values where the sentinels were in
its parameters and converts the rows with the compiled query's own converters,
so the rows are what ``values_list()`` would return (twin tests:
``tests/core/test_prepared.py``).

It suits a query whose SQL does not depend on the values given: a filter on a
column by a value of one type that is never None (``None`` would make it
``IS NULL``). A sentinel that does not reach the parameters as it was given (a
value changed before the query is built, or written into the SQL) is refused
when the query is compiled.
"""

from django.db import connections


class PreparedValues:
    """``values_list()`` of an ORM query, compiled once and run for other values.

    ``build(*sentinels)`` returns the queryset; ``get(*values)`` and
    ``all(*values)`` run it with ``values`` in place of ``sentinels``.
    """

    SENTINEL = -987_654_321_123

    def __init__(self, build, using="default", sentinels=(SENTINEL,)):
        self.sentinels = tuple(sentinels)
        queryset = build(*self.sentinels)
        self.compiler = queryset.query.get_compiler(using)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        # (parameter position, which value) for each place a sentinel stands.
        self.positions = [
            (index, which)
            for index, value in enumerate(self.params)
            for which, sentinel in enumerate(self.sentinels)
            if type(value) is type(sentinel) and value == sentinel
        ]
        if {which for _, which in self.positions} != set(range(len(self.sentinels))):
            raise ValueError("The query does not use every value it was built with as a parameter.")
        self.using = using
        # What results_iter() works out on every call, once: the selected expressions' converters.
        fields = [selected[0] for selected in self.compiler.select[0 : self.compiler.col_count]]
        if self.compiler.has_composite_fields(fields):
            raise ValueError("Composite primary keys are not supported.")
        self.converters = self.compiler.get_converters(fields)

    def _rows(self, values, fetch):
        if len(values) != len(self.sentinels):
            raise TypeError(f"{len(self.sentinels)} values expected, {len(values)} given.")
        params = list(self.params)
        for position, which in self.positions:
            params[position] = values[which]
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = fetch(cursor)
        if self.converters and rows:
            rows = list(self.compiler.apply_converters(rows, self.converters))
        return [tuple(row) for row in rows]

    def get(self, *values):
        """The first row's values as a tuple, or None when there is no row."""
        rows = self._rows(values, lambda cursor: [row] if (row := cursor.fetchone()) is not None else [])
        return rows[0] if rows else None

    def all(self, *values):
        """Every row's values, as tuples."""
        return self._rows(values, lambda cursor: cursor.fetchall())
