"""The SQLite backend's date-time converter (core.sqlite.operations) answers as Django's own does."""

import datetime
import threading
import zoneinfo

import pytest
from django.db import connection, connections
from django.db.backends.sqlite3.base import DatabaseWrapper as DjangoSQLite
from django.test import override_settings

from core.sqlite.operations import DatabaseOperations
from customers.models import Customer
from tests.factories import CustomerFactory

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="the SQLite backend's own converter")

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


class Moment(datetime.datetime):
    """A datetime of another class, as an adapter could hand one back."""


VALUES = [
    None,
    "2026-12-06 14:27:00.123456",
    "2026-12-06 14:27:00",
    "2026-12-06T14:27:00.5",
    "2026-12-06 14:27",
    "2026-12-06 14:27:00+05:30",
    "2026-12-06 14:27:00Z",
    "0001-01-01 00:00:00",
    "9999-12-31 23:59:59.999999",
    "2026-02-30 10:00:00",  # well formed, no such day: ValueError
    "yesterday",  # not a date-time at all
    datetime.datetime(2026, 3, 29, 2, 30),
    datetime.datetime(2026, 3, 29, 2, 30, tzinfo=datetime.UTC),
    datetime.datetime(2026, 3, 29, 2, 30, tzinfo=SHANGHAI),
    Moment(2026, 3, 29, 2, 30),
]


def outcome(convert, value):
    try:
        result = convert(value, None, connection)
    except Exception as exc:  # noqa: BLE001 - the same error is part of the same answer
        return ("raises", type(exc))
    if result is None:
        return None
    return (result, type(result), result.tzinfo, result.utcoffset())


@pytest.fixture
def database_zone():
    """Sets the database connection's TIME_ZONE, as DATABASES["default"]["TIME_ZONE"] would."""
    saved = connection.settings_dict.get("TIME_ZONE")

    def use(name):
        connection.settings_dict["TIME_ZONE"] = name
        connection.__dict__.pop("timezone", None)

    yield use
    use(saved)


def test_the_backend_uses_it(db):
    assert type(connection.ops) is DatabaseOperations


@pytest.mark.parametrize("use_tz", [True, False])
@pytest.mark.parametrize("zone", [None, "Asia/Shanghai"])
def test_every_value_converts_as_djangos(db, database_zone, use_tz, zone):
    database_zone(zone)
    with override_settings(USE_TZ=use_tz):
        for value in VALUES:
            ours = outcome(connection.ops.convert_datetimefield_value, value)
            django = outcome(
                lambda *args: DjangoSQLite.ops_class.convert_datetimefield_value(connection.ops, *args), value
            )
            assert ours == django, value


def test_a_change_of_use_tz_is_seen_by_a_converter_already_in_use(db):
    customer = CustomerFactory()
    aware = Customer.objects.values_list("created_at", flat=True).get(pk=customer.pk)
    assert aware.tzinfo is datetime.UTC
    with override_settings(USE_TZ=False):
        naive = Customer.objects.values_list("created_at", flat=True).get(pk=customer.pk)
    assert naive.tzinfo is None
    assert naive == aware.replace(tzinfo=None)
    assert Customer.objects.values_list("created_at", flat=True).get(pk=customer.pk) == aware


def test_a_change_made_in_another_thread_is_seen(db):
    """Django forgets a connection's zone in the thread that changes the setting; the converter reads the
    setting again in every thread, as Django's reads it for every value."""
    steps = [threading.Event() for _ in range(4)]
    answers = []

    def convert():
        ops = connections["default"].ops  # this thread's own connection
        try:
            for step in range(0, 4, 2):
                answers.append(outcome(ops.convert_datetimefield_value, "2026-12-06 14:27:00"))
                steps[step].set()
                steps[step + 1].wait(60)
            answers.append(outcome(ops.convert_datetimefield_value, "2026-12-06 14:27:00"))
        finally:
            connections.close_all()

    worker = threading.Thread(target=convert)
    worker.start()
    assert steps[0].wait(60)
    with override_settings(USE_TZ=False):
        steps[1].set()
        assert steps[2].wait(60)
    steps[3].set()
    worker.join(60)
    assert not worker.is_alive()
    naive = datetime.datetime(2026, 12, 6, 14, 27)
    aware = naive.replace(tzinfo=datetime.UTC)
    assert [answer[0] for answer in answers] == [aware, naive, aware]
