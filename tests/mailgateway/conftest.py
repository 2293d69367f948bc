import contextlib
import re
import smtplib

import pytest
from django.contrib.auth.models import Group

from mailgateway.models import GatewayAddress
from mailgateway.smtp import Gateway
from tests.factories import CustomerFactory, UserFactory

DOMAIN = "in.crm.test"


@pytest.fixture
def gateway(settings, transactional_db):
    """The gateway's SMTP server on a free port, in a thread of this process; stopped whatever happens."""
    settings.MAIL_GATEWAY_DOMAIN = DOMAIN
    server = Gateway("127.0.0.1", 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def people(transactional_db):
    def member(name, group):
        user = UserFactory(username=name)
        user.groups.add(Group.objects.get(name=group))
        return user

    rep_a, rep_b = member("rep_a", "Sales rep"), member("rep_b", "Sales rep")
    return {
        "rep_a": rep_a,
        "rep_b": rep_b,
        "manager": member("manager", "Sales manager"),
        "reader": member("reader", "Read-only"),
        "alice": CustomerFactory(name="Alice Ltd", email="Alice@Customer.example", owner=rep_a),
        "bob": CustomerFactory(name="Bob GmbH", email="bob@customer.example", owner=rep_b),
        "carol": CustomerFactory(name="Carol SA", email="carol@customer.example", owner=rep_a),
    }


def address_of(user):
    return f"{GatewayAddress.for_user(user).token}@{DOMAIN}"


def send(gateway, rcpt, raw, sender="someone@example.com"):
    """One SMTP session: the reply to DATA as (code, text). Line ends are sent as CRLF, as on the wire."""
    raw = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
        client.ehlo()
        code, _ = client.mail(sender)
        assert code == 250
        for address in [rcpt] if isinstance(rcpt, str) else rcpt:
            code, text = client.rcpt(address)
            if code != 250:
                return code, text.decode()
        code, text = client.data(raw)
        return code, text.decode()


@contextlib.contextmanager
def accepted_for(gateway, user):
    """An SMTP session that has had ``user``'s gateway address accepted (RCPT), for the message to follow."""
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=30) as client:
        client.ehlo()
        client.mail("someone@example.com")
        assert client.rcpt(address_of(user))[0] == 250
        yield client
