"""Reading model instances with SQL built once per process.

For the few queries every request runs (the bearer token lookup, a row by
primary key) compiling the ORM query costs several times as much as executing
it. :class:`RowReader` builds the column list and the value converters of a
model once, from its metadata, and turns result rows into model instances
exactly as the ORM would (``Model.from_db`` with the backend's and the fields'
converters), so that signals, ``from_db`` overrides and deferred loading
behave as usual.
"""

from functools import cache

from django.db import connections


class RowReader:
    def __init__(self, model, using="default"):
        self.model = model
        self.using = using
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        connection = connections[using]
        quote = connection.ops.quote_name
        self.table = quote(model._meta.db_table)
        self.columns = [f"{self.table}.{quote(field.column)}" for field in self.fields]
        self.converters = []
        for field in self.fields:
            column = field.get_col(model._meta.db_table)
            functions = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            self.converters.append((column, functions) if functions else None)
        self.by_pk_sql = (
            f"SELECT {', '.join(self.columns)} FROM {self.table} WHERE {self.table}.{quote(model._meta.pk.column)} = %s"
        )

    def __len__(self):
        return len(self.fields)

    def instance(self, row):
        """A model instance from the columns of ``row`` (in ``self.columns`` order)."""
        connection = connections[self.using]
        values = list(row)
        for index, converter in enumerate(self.converters):
            if converter is not None:
                expression, functions = converter
                value = values[index]
                for function in functions:
                    value = function(value, expression, connection)
                values[index] = value
        return self.model.from_db(self.using, self.attnames, values)

    def get(self, pk):
        """The instance with primary key ``pk``, or None."""
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.by_pk_sql, [pk])
            row = cursor.fetchone()
        return None if row is None else self.instance(row)


@cache
def reader(model, using="default"):
    return RowReader(model, using)


class PreparedValues:
    """``values_list()`` of a one-row ORM query, compiled once and run for any primary key.

    ``build(pk)`` returns the queryset for one primary key. It is compiled once
    with a sentinel key; each call substitutes the real key into the parameters
    and converts the row with the compiled query's own converters, so the
    values are what the ORM would return.
    """

    SENTINEL = -987_654_321_123

    def __init__(self, build, using="default"):
        queryset = build(self.SENTINEL)
        self.compiler = queryset.query.get_compiler(using)
        self.sql, params = self.compiler.as_sql()
        self.params = list(params)
        self.positions = [index for index, value in enumerate(self.params) if value == self.SENTINEL]
        if not self.positions:
            raise ValueError("The query does not use the primary key it was built with.")
        self.using = using

    def get(self, pk):
        """The row's values as a tuple, or None when there is no such row."""
        params = list(self.params)
        for position in self.positions:
            params[position] = pk
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        return next(iter(self.compiler.results_iter(results=[[row]], tuple_expected=True)))
