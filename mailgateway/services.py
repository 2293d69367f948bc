"""What the gateway does with a message for a user: log it on their customers, or keep it to assign.

Only the gateway address the mail was sent to says whose it is; the From header,
which anyone can write, picks nothing. The customers are those whose address is
in From, To or Cc and that the user may see (``core.access.scope``).
"""

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from core import access
from core.dates import validate_record_date
from core.history import acting_as
from core.rowlocks import lock_keys
from customers.models import Customer
from interactions.models import Interaction
from notifications.services import notify

from .models import InboundEmail

UNMATCHED_KIND = "email.unmatched"


@dataclass
class Outcome:
    status: str  # "logged", "unmatched", "duplicate", or "no user" (deleted while the mail arrived)
    customers: int = 0


def notes_of(subject, body):
    subject = subject or _("(no subject)")
    return f"{subject}\n\n{body}".strip()


def _occurred_at(sent_at, now):
    """When the mail was sent, if its Date is plausible (not in the future, within the record years); else now."""
    if sent_at is None or sent_at > now + datetime.timedelta(minutes=5):
        return now
    try:
        validate_record_date(sent_at)
    except ValidationError:
        return now
    return sent_at


def matching_customers(user, addresses):
    """The customers ``user`` may see whose email is one of ``addresses`` (any letter case), by id.

    A message may name more addresses than the database takes parameters in one query (SQLite's
    limit): they are matched in batches of half as many, the rest left for the scope's own parameters.

    In a transaction (``receive``'s), each batch is held as the foreign key of the interactions logged on them holds
    it, before it is read (``rowlocks.lock_keys``): a customer being deleted is waited for, then left out. Read
    before, it failed that check at the COMMIT, and the whole message with it.
    """
    wanted = list(dict.fromkeys(addresses))
    batch = (connection.features.max_query_params or 0) // 2 or len(wanted) or 1
    seen = access.scope(Customer.objects.all(), user)
    found = {}
    for start in range(0, len(wanted), batch):
        customers = seen.with_email_in(wanted[start : start + batch])
        lock_keys(customers)
        found.update((customer.pk, customer) for customer in customers)
    return [found[pk] for pk in sorted(found)]


def _log(inbound, customers, user, now):
    """An ``email`` interaction on each customer, as ``user``'s, linked to ``inbound``."""
    with acting_as(user):
        created = [
            Interaction.objects.create(
                customer=customer,
                interaction_type=Interaction.Type.EMAIL,
                notes=notes_of(inbound.subject, inbound.body),
                occurred_at=_occurred_at(inbound.sent_at, now),
                created_by=user,
            )
            for customer in customers
        ]
    inbound.interactions.add(*created)
    return created


def receive(parsed, user, now=None):
    """Log ``parsed`` (mailgateway.parsing.Parsed) for ``user``; an :class:`Outcome`.

    The same Message-ID for the same user is a duplicate and changes nothing; a
    customer on whom another user's copy of the mail was already logged is skipped.
    A user deleted meanwhile (their mail's row fails its foreign key) has nothing logged: "no user".
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            inbound = InboundEmail.objects.create(
                user=user,
                message_id=parsed.message_id,
                from_address=parsed.from_address,
                to_addresses=parsed.recipients[:100],
                subject=parsed.subject,
                body=parsed.body,
                sent_at=parsed.sent_at,
                received_at=now,
                status=InboundEmail.Status.UNMATCHED,
            )
            already = set(
                InboundEmail.objects.filter(message_id=parsed.message_id)
                .exclude(interactions__customer=None)
                .values_list("interactions__customer", flat=True)
            )
            customers = [
                customer for customer in matching_customers(user, parsed.addresses) if customer.pk not in already
            ]
            if customers:
                _log(inbound, customers, user, now)
                InboundEmail.objects.filter(pk=inbound.pk).update(status=InboundEmail.Status.LOGGED)
                return Outcome("logged", len(customers))
            notify(
                user,
                UNMATCHED_KIND,
                _("Email to assign: %(subject)s") % {"subject": parsed.subject or _("(no subject)")},
                _("No customer of yours has an address in this email (from %(sender)s); assign it to one.")
                % {"sender": parsed.from_address or "?"},
                url=reverse("admin:mailgateway_inboundemail_change", args=[inbound.pk]),
            )
            return Outcome("unmatched")
    except IntegrityError:
        if not type(user)._default_manager.filter(pk=user.pk).exists():
            return Outcome("no user")
        return Outcome("duplicate")


def assign(*, inbound, customer, user):
    """Log a kept email on ``customer`` (which ``user`` may see and change), as ``user``'s."""
    if not access.can_write(user) or not access.scope(Customer.objects.filter(pk=customer.pk), user).exists():
        raise ValidationError(_("You may not log email on this customer."))
    with transaction.atomic():
        _log(inbound, [customer], user, timezone.now())
        InboundEmail.objects.filter(pk=inbound.pk).update(status=InboundEmail.Status.ASSIGNED)
    inbound.status = InboundEmail.Status.ASSIGNED
