"""Django's SQLite operations, with a leaner reading of date-times (every list reads three a row)."""

import datetime

from django.db.backends.sqlite3 import operations
from django.utils.dateparse import parse_datetime


class DatabaseOperations(operations.DatabaseOperations):
    def convert_datetimefield_value(self, value, expression, connection):
        """Django's converter, without looking ``USE_TZ`` up in the settings for every value.

        The connection's ``timezone`` is None exactly when ``USE_TZ`` is off (Django defines it so, and
        forgets it whenever either setting changes), so it answers both questions at once; an aware
        value is kept as it is, a naive one is put in that zone, as Django's ``make_aware`` does.
        tests/core/test_sqlite_operations.py holds the two to the same answers.
        """
        if value is not None:
            if not isinstance(value, datetime.datetime):
                value = parse_datetime(value)
            zone = self.connection.timezone
            if zone is not None and value.utcoffset() is None:
                value = value.replace(tzinfo=zone)
        return value
