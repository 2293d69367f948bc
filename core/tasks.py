"""The kernel's jobs, run by ``manage.py worker`` (huey; see docs/deployment.md).

- ``dispatch_events``: enqueued after every commit that wrote events; places the
  committed events (``core.events.relay``), hands them to the dispatchers
  (``core.events.register_dispatcher``) in that order and marks them dispatched.
  Retried with backoff when a dispatcher fails.
- ``sweep_events``: every minute, re-sends events that a crash between commit and
  enqueue left undispatched (the event row is the source of truth).
- ``purge_expired``: daily, the clean-ups of ``core/maintenance.py``.
- ``purge_uploads``: hourly, admin import uploads never confirmed (``core/uploads.py``).

An app adds its own periodic job in its ``tasks.py`` (the worker imports every
app's), as these are.
"""

import logging
from datetime import timedelta

from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from core import events, maintenance
from core.models import Event
from core.uploads import purge_abandoned_uploads

logger = logging.getLogger("crm.jobs")

# Events handed over per job; a larger backlog is worked through by the next jobs in turn.
DISPATCH_BATCH = 500
# An event older than this and still undispatched lost its job (a crash after the commit).
SWEEP_AFTER = timedelta(minutes=1)


@db_task(retries=8, retry_delay=2, retry_backoff=2)
def dispatch_events():
    """Give the undispatched events, in commit order, to every dispatcher; mark them dispatched."""
    while True:
        with transaction.atomic():
            # Place what has committed (core.events.relay) and hand over by position. The relay's
            # turn is held to this transaction's end: dispatch jobs of several workers hand their
            # batches over one after the other, so the dispatchers get the events in order.
            events.relay(wait=True)
            batch = list(
                Event.objects.placed()
                .undispatched()
                .order_by("position")
                .select_for_update(skip_locked=True)[:DISPATCH_BATCH]
            )
            if not batch:
                return
            for dispatcher in events.dispatchers():
                dispatcher(batch)
            Event.objects.filter(pk__in=[event.pk for event in batch]).update(dispatched_at=timezone.now())
        if len(batch) < DISPATCH_BATCH:
            return


@db_periodic_task(crontab(minute="*"))
def sweep_events():
    if Event.objects.undispatched().filter(created_at__lt=timezone.now() - SWEEP_AFTER).exists():
        dispatch_events()


@db_periodic_task(crontab(minute="17", hour="3"))
def purge_expired():
    """Daily: expired idempotency keys, expired tokens, events past their retention."""
    counts = {
        "idempotency_keys": maintenance.purge_idempotency_keys(),
        "tokens": maintenance.purge_expired_tokens(),
        "events": maintenance.purge_events(),
    }
    logger.info("purged %s", counts)
    return counts


@db_periodic_task(crontab(minute="23"))
def purge_uploads():
    """Hourly: admin import uploads whose preview was never confirmed (older than ``DJANGO_IMPORT_UPLOAD_MAX_AGE_HOURS``)."""
    removed = purge_abandoned_uploads()
    if removed:
        logger.info("purged %s abandoned import uploads", removed)
    return removed
