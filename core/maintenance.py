"""Clean-ups that run as periodic jobs (``core/tasks.py``) and as operator commands alike.

Each is a plain function returning how many rows it removed, so that the job and
the command can never disagree. A new clean-up (an app's abandoned uploads, say)
is a function like these in its app, called by a periodic job in that app's
``tasks.py`` and, if operators need it by hand, by a command.
"""

from django.utils import timezone
from knox.models import get_token_model

from core.models import Event, IdempotencyKey


def purge_idempotency_keys(*, now=None):
    """Delete stored ``Idempotency-Key`` responses older than their 24 hours."""
    deleted, _ = IdempotencyKey.objects.expired(now).delete()
    return deleted


def purge_expired_tokens(*, now=None):
    """Delete bearer tokens past their expiry (they are refused already; this reclaims the rows)."""
    deleted, _ = get_token_model().objects.filter(expiry__lt=now or timezone.now()).delete()
    return deleted


def purge_events(*, now=None):
    """Delete events older than ``CRM_EVENT_RETENTION_DAYS`` (the feed's retention)."""
    deleted, _ = Event.objects.expired(now).delete()
    return deleted
