"""Mail logged while a customer it names, or the user it is for, is being deleted (two connections at once:
PostgreSQL; SQLite runs one writer at a time, ``core/sqlite``).

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
from tests.concurrency import Held, Thread, a_session_waits, ended, while_deleting

from .conftest import accepted_for
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


def test_mail_to_a_user_deleted_while_it_arrives_is_refused_and_nothing_logged(gateway, people):
    # Accepted at RCPT; the user's delete is under way (not committed) when the message arrives: the gateway reads
    # the user, then its write waits for the delete, and finds the user gone. Answered as for an address unknown,
    # not as a message already logged.
    rep = people["rep_a"]
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", message())
    with accepted_for(gateway, rep) as client:
        with Held(lambda: type(rep).objects.select_for_update().get(pk=rep.pk).delete()) as deleting:
            sending = Thread(lambda: client.data(raw))
            sending.start()
            assert a_session_waits(), "the gateway never waited for the delete"
            deleting.release.set()
        ended(deleting, sending)

    assert not deleting.error and not sending.error
    code, text = sending.result
    assert (code, text.decode()) == (550, "5.1.1 No such gateway address")
    assert not InboundEmail.objects.exists() and not Interaction.objects.exists()
