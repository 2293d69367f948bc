"""``notify()``: how any app tells users something (in the CRM, and by email when asked)."""

import logging
import unicodedata
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.utils import timezone

from .models import Notification

logger = logging.getLogger("crm.notifications")

TITLE_MAX = Notification._meta.get_field("title").max_length
URL_MAX = Notification._meta.get_field("url").max_length


def _users(users):
    if isinstance(users, get_user_model()):
        return [users]
    if isinstance(users, Iterable):
        return list(users)
    raise TypeError(f"notify() takes a user or users, not {type(users).__name__}")


def notify(users, kind, title, body="", *, url="", email=False):
    """Notify ``users`` (a user, a list or a queryset): one notification each, created in bulk.

    With ``email=True`` each recipient with an address also gets the message by
    email, after the commit of the caller's transaction (a rolled-back change
    sends nothing). Returns the notifications created.
    """
    recipients = [user for user in _users(users) if user is not None]
    now = timezone.now()
    created = Notification.objects.bulk_create(
        [
            Notification(
                recipient=user, kind=kind, title=title[:TITLE_MAX], body=body, url=url[:URL_MAX], created_at=now
            )
            for user in recipients
        ]
    )
    if email:
        addresses = [user.email for user in recipients if user.email]
        if addresses:
            transaction.on_commit(lambda: send_email(addresses, title, body))
    return created


def send_email(addresses, subject, body, *, raise_errors=False):
    """One message per address through Django's email backend (``DJANGO_EMAIL_*``); the number sent.

    Failures are logged, or raised with ``raise_errors`` (for callers that record them).
    """
    # A subject is one line: a title with line breaks (a task's may have them) would make Django
    # refuse the message ("Header values can't contain newlines") on every try.
    subject = " ".join(subject.split())
    # Nor other control characters (a terminal's escape, a stray byte), which stricter mail servers refuse.
    subject = "".join(character for character in subject if unicodedata.category(character) != "Cc")
    sent = 0
    for address in addresses:
        message = EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=[address])
        try:
            sent += message.send()
        except Exception:  # a mail server that is down must not undo the notification
            if raise_errors:
                raise
            logger.exception("could not send %r to %s", subject, address)
    return sent
