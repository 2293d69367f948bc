"""ORM queries compiled once per process and run with other values for their parameters.

Compiling a queryset (cloning it, resolving its expressions, writing its SQL and
working out its converters) costs several times what SQLite spends running a
small statement. :class:`PreparedValues` does it once: the query is built with
sentinel values, and each run puts the real values where the sentinels were in
its parameters and converts the rows with the compiled query's own converters,
so the rows are what ``values_list()`` would return (twin tests:
``tests/core/test_prepared.py``); :class:`PreparedInstances` makes them model
instances as the ORM does.

It suits a query whose SQL does not depend on the values given: a filter on a
column by a value of one type that is never None (``None`` would make it
``IS NULL``). A sentinel that does not reach the parameters as it was given (a
value changed before the query is built, or written into the SQL) is refused
when the query is compiled. The values reach the database as they are given
(the ORM's ``get_db_prep_value`` is not applied to them): each must be of its
sentinel's type, and integers and text are what the project gives.

A compiled query outlives the thread that compiled it, and must not keep that
thread's database connection open: the backend's converters, methods of the
connection, are bound again to each thread's connection, and let go with the
thread (:class:`Converters`).
"""

import threading

from django.db import connections


def _detach(functions, connection):
    """``functions`` with those bound to ``connection`` or its operations named instead."""
    detached = []
    for function in functions:
        owner = getattr(function, "__self__", None)
        if owner is not None and owner is connection:
            detached.append(("connection", function.__name__))
        elif owner is not None and owner is connection.ops:
            detached.append(("ops", function.__name__))
        else:
            detached.append(function)
    return tuple(detached)


def _attach(functions, connection):
    """The functions :func:`_detach` gave, bound to ``connection``."""
    return [
        getattr(connection if function[0] == "connection" else connection.ops, function[1])
        if isinstance(function, tuple)
        else function
        for function in functions
    ]


class Converters:
    """A query's column converters, ``(position, functions, expression)``, applied as the compiler's
    ``apply_converters()`` applies them.

    Those that are methods of the connection they were worked out on are bound again to each
    thread's own connection, once per thread, and let go with the thread.
    """

    def __init__(self, converters, connection):
        detached = [
            (position, _detach(functions, connection), expression) for position, functions, expression in converters
        ]
        self.empty = not detached
        self._detached = detached
        self._local = threading.local()

    def _bound(self, connection):
        local = self._local
        if getattr(local, "connection", None) is not connection:
            local.converters = [
                (position, _attach(functions, connection), expression)
                for position, functions, expression in self._detached
            ]
            local.connection = connection
        return local.converters

    def apply(self, row, connection):
        """The values of ``row`` converted, as a list."""
        values = list(row)
        for position, functions, expression in self._bound(connection):
            value = values[position]
            for function in functions:
                value = function(value, expression, connection)
            values[position] = value
        return values


class PreparedValues:
    """``values_list()`` of an ORM query, compiled once and run for other values.

    ``build(*sentinels)`` returns the queryset; ``get(*values)`` and
    ``all(*values)`` run it with ``values`` in place of ``sentinels``.
    """

    SENTINEL = -987_654_321_123

    def __init__(self, build, using="default", sentinels=(SENTINEL,)):
        self.sentinels = tuple(sentinels)
        queryset = build(*self.sentinels)
        compiler = queryset.query.get_compiler(using)
        self.sql, params = compiler.as_sql()
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
        fields = [selected[0] for selected in compiler.select[0 : compiler.col_count]]
        if compiler.has_composite_fields(fields):
            raise ValueError("Composite primary keys are not supported.")
        self.converters = Converters(
            [
                (position, functions, expression)
                for position, (functions, expression) in compiler.get_converters(fields).items()
            ],
            compiler.connection,
        )

    def _rows(self, values, fetch):
        if len(values) != len(self.sentinels):
            raise TypeError(f"{len(self.sentinels)} values expected, {len(values)} given.")
        params = list(self.params)
        for position, which in self.positions:
            value, sentinel = values[which], self.sentinels[which]
            if type(value) is not type(sentinel):
                raise TypeError(f"A {type(sentinel).__name__} expected, {type(value).__name__} given.")
            params[position] = value
        connection = connections[self.using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = fetch(cursor)
        if self.converters.empty:
            return [tuple(row) for row in rows]
        return [tuple(self.converters.apply(row, connection)) for row in rows]

    def get(self, *values):
        """The first row's values as a tuple, or None when there is no row."""
        rows = self._rows(values, lambda cursor: [row] if (row := cursor.fetchone()) is not None else [])
        return rows[0] if rows else None

    def all(self, *values):
        """Every row's values, as tuples."""
        return self._rows(values, lambda cursor: cursor.fetchall())


class PreparedInstances:
    """Model instances of an ORM query compiled once: :class:`PreparedValues` of the model's columns (and of the
    annotations named in ``names``), each row made an instance with ``from_db`` as the ORM makes it, with the
    annotations set on it as the ORM sets them.

    ``build(*sentinels)`` returns a queryset of ``model``.
    """

    def __init__(self, model, build, using="default", sentinels=(PreparedValues.SENTINEL,), names=()):
        self.model, self.using, self.names = model, using, tuple(names)
        self.attnames = [field.attname for field in model._meta.concrete_fields]
        self.values = PreparedValues(
            lambda *values: build(*values).values_list(*self.attnames, *self.names), using, sentinels=sentinels
        )

    def _instance(self, row):
        count = len(self.attnames)
        instance = self.model.from_db(self.using, self.attnames, row[:count])
        for name, value in zip(self.names, row[count:], strict=True):
            setattr(instance, name, value)
        return instance

    def get(self, *values):
        """The first row's instance, or None when there is no row."""
        row = self.values.get(*values)
        return None if row is None else self._instance(row)

    def all(self, *values):
        return [self._instance(row) for row in self.values.all(*values)]
