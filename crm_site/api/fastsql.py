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
