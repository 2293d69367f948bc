"""Django's SQLite operations, with a leaner reading of date-times (every list reads three a row)."""

import datetime

from django.conf import settings
from django.core.signals import setting_changed

# Django's backend modules import each other: its ``base`` first, as Django loads them.
from django.db.backends.sqlite3 import base as _django_base  # noqa: F401
from django.db.backends.sqlite3 import operations
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_datetime


class _ZoneSettings:
    """How many times ``USE_TZ`` or ``TIME_ZONE`` changed in this process (only tests change them)."""

    version = 0


@receiver(setting_changed)
def _zone_settings_changed(*, setting, **kwargs):
    if setting in {"USE_TZ", "TIME_ZONE"}:
        _ZoneSettings.version += 1


class DatabaseOperations(operations.DatabaseOperations):
    _use_tz = None
    _use_tz_version = None

    def convert_datetimefield_value(self, value, expression, connection):
        """Django's converter, without looking ``USE_TZ`` up in the settings for every value.

        The setting is read again when it may have changed (a change in any thread counts, as
        Django's own read of the setting for each value would see it), and a naive value is put
        in the connection's zone as Django's ``make_aware`` puts it. tests/core/test_sqlite_operations.py
        holds the two converters to the same answers.
        """
        if value is not None:
            if not isinstance(value, datetime.datetime):
                value = parse_datetime(value)
            if self._use_tz_version != _ZoneSettings.version:
                version = _ZoneSettings.version  # read first: a change meanwhile makes the next call read again
                self._use_tz, self._use_tz_version = settings.USE_TZ, version
            if self._use_tz and value.utcoffset() is None:
                zone = self.connection.timezone
                value = value.replace(tzinfo=zone) if zone is not None else timezone.make_aware(value, zone)
        return value
