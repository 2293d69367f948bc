"""Mail logged while a customer it names is being deleted (two connections at once: PostgreSQL; SQLite runs one
writer at a time, ``core/sqlite``).

The gateway holds the customers it matched, as their interactions' foreign key's check does, before it reads them:
a delete under way is waited for, then that customer is left out, and the mail is logged on the others (or kept to
assign). Read before, the customer failed that check at the COMMIT, and the whole message was taken for one already
logged (``250 OK: already logged``), logged nowhere.
"""

import re

import pytest
from django.db import connection

from customers.services import delete_customer
from interactions.models import Interaction
from mailgateway.models import InboundEmail
from mailgateway.smtp import deliver
from tests.concurrency import while_deleting

from .test_gateway import message

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="two connections at once: PostgreSQL (SQLite serialises writers)"
    ),
]


def test_mail_naming_a_customer_being_deleted_is_logged_on_the_others(people):
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", message(to="alice@customer.example", cc="carol@customer.example"))
    outcomes = []

    errors = while_deleting(
        delete_customer, people["alice"], lambda: outcomes.append(deliver(raw, [people["rep_a"].pk]))
    )

    assert not errors
    [[outcome]] = outcomes
    assert (outcome.status, outcome.customers) == ("logged", 1)
    assert [interaction.customer for interaction in Interaction.objects.all()] == [people["carol"]]
    assert InboundEmail.objects.get().status == InboundEmail.Status.LOGGED


def test_mail_naming_only_a_customer_being_deleted_is_kept_to_assign(people):
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", message(to="alice@customer.example"))
    outcomes = []

    errors = while_deleting(
        delete_customer, people["alice"], lambda: outcomes.append(deliver(raw, [people["rep_a"].pk]))
    )

    assert not errors
    [[outcome]] = outcomes
    assert outcome.status == "unmatched"
    assert not Interaction.objects.exists()
    assert InboundEmail.objects.get().status == InboundEmail.Status.UNMATCHED
