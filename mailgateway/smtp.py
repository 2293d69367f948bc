"""The SMTP side of the gateway (aiosmtpd): who may receive, how big, and the answer to every message.

- ``RCPT TO`` is accepted only for a known gateway address of a user who may write
  (``550`` otherwise); at most ``MAX_RECIPIENTS`` per message.
- A message larger than ``DJANGO_MAIL_GATEWAY_MAX_BYTES`` (10 MB) is refused with ``552``,
  by its declared ``SIZE`` or as it arrives.
- Each message is parsed leniently (``parsing.py``) and handled per recipient
  (``services.receive``) in a worker thread, off the event loop; an unexpected error is
  answered ``451`` (try again later) and logged, never a dropped connection.
"""

import asyncio
import logging
import threading

from aiosmtpd.smtp import SMTP
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import close_old_connections, connections

from core import access

from . import parsing, services
from .models import GatewayAddress

logger = logging.getLogger("crm.mailgateway")

MAX_RECIPIENTS = 20


def _in_thread(function, *args):
    """Run ``function`` with fresh database connections, closed afterwards (the thread pool outlives them)."""
    close_old_connections()
    try:
        return function(*args)
    finally:
        connections.close_all()


def owner_of(address):
    """The user whose gateway address ``address`` is, if they may write; else None."""
    local, _, domain = address.strip().rpartition("@")
    if not local or domain.lower() != settings.MAIL_GATEWAY_DOMAIN.lower() or len(local) > 64:
        return None
    if not local.isprintable():  # no token holds a control character (PostgreSQL refuses a NUL in a query)
        return None
    found = GatewayAddress.objects.filter(token=local.lower()).select_related("user").first()
    if found is None or not receives(found.user):
        return None
    return found.user.pk


def receives(user):
    """Whether mail to ``user``'s gateway address is logged: an active user whose role writes."""
    return user.is_active and access.can_write(user)


def deliver(raw, user_ids):
    """Log the message for each of ``user_ids`` who still receives mail (their rights may have ended, or the user
    been deleted, since RCPT): their outcomes, or None if nobody does."""
    found = get_user_model().objects.in_bulk(user_ids)
    # In the order of RCPT: a customer already logged for one recipient is skipped for the next.
    users = [found[user_id] for user_id in user_ids if user_id in found and receives(found[user_id])]
    if not users:
        return None
    parsed = parsing.parse(raw)
    outcomes = [services.receive(parsed, user) for user in users]
    return [outcome for outcome in outcomes if outcome.status != "no user"] or None


class GatewayHandler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        loop = asyncio.get_running_loop()
        try:
            user_id = await loop.run_in_executor(None, _in_thread, owner_of, address)
        except Exception:
            logger.exception("could not look up %r", address)
            return "451 4.3.0 Temporary failure, try again later"
        if user_id is None:
            return "550 5.1.1 No such gateway address"
        envelope.rcpt_tos.append(address)
        envelope.user_ids = [*getattr(envelope, "user_ids", []), user_id]
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        user_ids = list(dict.fromkeys(getattr(envelope, "user_ids", [])))
        raw = envelope.original_content or b""
        loop = asyncio.get_running_loop()
        try:
            outcomes = await loop.run_in_executor(None, _in_thread, deliver, raw, user_ids)
        except Exception:
            logger.exception("could not handle a message for users %s", user_ids)
            return "451 4.3.0 Temporary failure, try again later"
        if outcomes is None:
            # Every recipient's rights ended (or the user was deleted) between RCPT and DATA: as had the address
            # been unknown then.
            return "550 5.1.1 No such gateway address"
        logged = sum(outcome.customers for outcome in outcomes)
        statuses = sorted({outcome.status for outcome in outcomes})
        logger.info("message for users %s: %s, %s customers", user_ids, statuses, logged)
        if statuses == ["duplicate"]:
            return "250 OK: already logged"
        if logged:
            return f"250 OK: logged on {logged} customer(s)"
        return "250 OK: kept for you to assign"


def make_smtp():
    return SMTP(
        GatewayHandler(),
        data_size_limit=settings.MAIL_GATEWAY_MAX_BYTES,
        hostname=settings.MAIL_GATEWAY_DOMAIN or None,
        ident="CRM mail gateway",
        enable_SMTPUTF8=True,
        decode_data=False,
    )


class Gateway:
    """The SMTP server on ``host:port`` (port 0: any free one, read back from ``port``)."""

    def __init__(self, host="127.0.0.1", port=0):
        self.host, self.requested_port = host, port
        self.loop = None
        self.server = None
        self.thread = None

    @property
    def port(self):
        return self.server.sockets[0].getsockname()[1]

    async def _start(self):
        self.server = await asyncio.get_running_loop().create_server(make_smtp, self.host, self.requested_port)

    def run(self, ready=None):
        """Serve in this thread until :meth:`stop`; ``ready()`` is called once listening."""
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._start())
            if ready:
                ready()
            self.loop.run_forever()
        finally:
            if self.server is not None:
                self.server.close()
                self.loop.run_until_complete(self.server.wait_closed())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
            self.loop.close()

    def start(self):
        """Serve in a background thread (tests); returns once listening."""
        started = threading.Event()
        self.thread = threading.Thread(target=self.run, kwargs={"ready": started.set}, daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the mail gateway did not start")
        return self

    def stop(self):
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not None:
            self.thread.join(10)
