"""Deliveries: from new events to signed POSTs, in order per endpoint, retried for about a day.

- :func:`fan_out` (a dispatcher of ``core.events``) writes one :class:`Delivery`
  per (endpoint, event) the endpoint wants, unique, and enqueues a run of each
  endpoint after the commit.
- :func:`run_endpoint` sends an endpoint's pending deliveries oldest first; it
  stops at one that waits for a retry, so events reach a receiver in order. It
  claims each delivery before sending (a second run of the job skips it) and
  may be run twice.
- Every function that schedules takes ``now``, so tests drive the clock.
"""

import json
import logging
import random
from datetime import timedelta
from email.utils import parsedate_to_datetime
from uuid import uuid4

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks import Webhook

from core.rowlocks import lock_keys, locking

from . import net, services
from .models import Delivery, Endpoint

logger = logging.getLogger("crm.webhooks")

# Waits before each retry: about a day in all, then the delivery has failed.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
# Random spread of each wait (±), so that endpoints failing together do not retry together.
JITTER = 0.1
# Client errors worth retrying: timeout, conflict, too many requests. Other 4xx will not get better.
RETRYABLE_4XX = {408, 409, 429}
# A Retry-After longer than this is capped: the receiver still gets its event within the day.
MAX_RETRY_AFTER = timedelta(hours=10)
TEST_EVENT_TYPE = "webhook.test"


def payload_for(event):
    """The body a receiver gets: ``{"type", "timestamp", "data"}`` (Standard Webhooks' shape)."""
    # Imported here: the feed's module builds its schema from the event types every app has registered.
    from core.api.events import EventSerializer

    return {
        "type": event.type,
        "timestamp": event.created_at.isoformat(),
        "data": json.loads(json.dumps(EventSerializer(event).data, cls=_Encoder)),
    }


class _Encoder(json.JSONEncoder):
    def default(self, value):
        from django.core.serializers.json import DjangoJSONEncoder

        return DjangoJSONEncoder().default(value)


def fan_out(events):
    """Write the deliveries of ``events`` (oldest first) for every active endpoint that wants them.

    The endpoints are held as their deliveries' foreign key's check holds them, before they are read: one being
    deleted is waited for, then left out (read before, its deliveries failed that check at the COMMIT, and the
    whole dispatch with them, retried).
    """
    active = Endpoint.objects.filter(is_active=True)
    lock_keys(active)
    endpoints = list(active)
    if not endpoints or not events:
        return
    rows = []
    for endpoint in endpoints:
        for event in events:
            if endpoint.wants(event.type):
                rows.append(
                    Delivery(
                        endpoint=endpoint,
                        event=event,
                        message_id=f"evt_{event.pk}",
                        event_type=event.type,
                        payload=payload_for(event),
                        next_attempt_at=event.created_at,
                    )
                )
    # A batch handed over twice (a worker killed mid-job) writes each delivery once.
    Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
    for endpoint_id in {row.endpoint_id for row in rows}:
        enqueue_run(endpoint_id)


def enqueue_run(endpoint_id, eta=None):
    """Run the endpoint's deliveries after the commit (at ``eta`` if given); the periodic sweep backs this up."""

    def enqueue():
        from .tasks import deliver_endpoint

        if eta is None:
            deliver_endpoint(endpoint_id)
        else:
            deliver_endpoint.schedule(args=(endpoint_id,), eta=eta)

    transaction.on_commit(enqueue, robust=True)


def send_test_event(*, endpoint, user=None, now=None):
    """Queue a ``webhook.test`` delivery to ``endpoint`` (after its pending ones) and run the endpoint."""
    now = now or timezone.now()
    delivery = Delivery.objects.create(
        endpoint=endpoint,
        message_id=f"test_{uuid4().hex}",
        event_type=TEST_EVENT_TYPE,
        payload={
            "type": TEST_EVENT_TYPE,
            "timestamp": now.isoformat(),
            "data": {"endpoint_id": endpoint.pk, "sent_by": getattr(user, "username", None)},
        },
        next_attempt_at=now,
        created_at=now,
    )
    enqueue_run(endpoint.pk)
    return delivery


def replay(*, deliveries, now=None):
    """Send ``deliveries`` again (same message id and body), behind the endpoints' pending ones; returns the count.

    A replay is a new attempt series: attempts start from zero. The deliveries of an
    endpoint disabled by failures wait, pending, until it is set active again
    (reactivating is a separate choice): ``run_endpoint`` sends nothing for it.
    """
    now = now or timezone.now()
    rows = list(deliveries.exclude(status=Delivery.Status.PENDING).values_list("pk", "endpoint_id"))
    Delivery.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        status=Delivery.Status.PENDING, attempts=0, next_attempt_at=now, claimed_until=None
    )
    for endpoint_id in {endpoint_id for _, endpoint_id in rows}:
        enqueue_run(endpoint_id)
    return len(rows)


def rotate_secret(*, endpoint, now=None):
    """A new secret; the old one keeps signing too for ``WEBHOOKS_SECRET_ROTATION_HOURS``.

    The endpoint is locked and its secret read again first: a rotation under way is waited for, and the secret it
    made is the one kept signing (read before it, that secret, already handed out, was lost); an endpoint deleted
    meanwhile is ``Endpoint.DoesNotExist``, not saved into no row.
    """
    from .models import new_secret

    now = now or timezone.now()
    with transaction.atomic():
        stored = locking(Endpoint.objects.filter(pk=endpoint.pk)).values_list("secret", flat=True).first()
        if stored is None:
            raise Endpoint.DoesNotExist("The webhook endpoint was deleted meanwhile.")
        endpoint.previous_secret = stored
        endpoint.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOKS_SECRET_ROTATION_HOURS)
        endpoint.secret = new_secret()
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def retry_delay(attempts, *, rng=random):
    """The wait after the ``attempts``-th failed attempt, with jitter; None when there are no retries left."""
    if attempts > len(RETRY_DELAYS):
        return None
    base = RETRY_DELAYS[attempts - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def _retry_after(value, now):
    """The wait a 429's ``Retry-After`` asks for (seconds or an HTTP date), or None."""
    if not value:
        return None
    try:
        wait = timedelta(seconds=int(value.strip()))
    except ValueError:
        try:
            wait = parsedate_to_datetime(value) - now
        except (TypeError, ValueError):
            return None
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)


def _next_due(endpoint_id, now):
    """The endpoint's oldest pending delivery, if it is due and not held by another run."""
    return Delivery.objects.filter(endpoint_id=endpoint_id, status=Delivery.Status.PENDING).order_by("id").first()


def run_endpoint(endpoint_id, *, now=None):
    """Send the endpoint's due deliveries in order; returns how many were attempted.

    Stops at the first delivery that is not due yet (its retry is scheduled) or
    that another run holds, so a later event never overtakes an earlier one.
    """
    attempted = 0
    while True:
        current = now or timezone.now()
        endpoint = Endpoint.objects.filter(pk=endpoint_id).first()
        if endpoint is None or not endpoint.is_active:
            return attempted
        delivery = _next_due(endpoint_id, current)
        if delivery is None:
            return attempted
        if delivery.next_attempt_at and delivery.next_attempt_at > current:
            return attempted
        lease = current + timedelta(seconds=settings.WEBHOOKS_CONNECT_TIMEOUT + settings.WEBHOOKS_READ_TIMEOUT + 30)
        claimed = (
            Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING, attempts=delivery.attempts)
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=current))
            .update(claimed_until=lease)
        )
        if not claimed:
            return attempted
        attempt(delivery=delivery, endpoint=endpoint, now=current)
        attempted += 1


def signed_headers(*, endpoint, message_id, body, now):
    """The Standard Webhooks headers; one ``v1,`` signature per secret in use (two during a rotation)."""
    sent_at = timezone.now()
    signatures = [Webhook(secret).sign(message_id, sent_at, body) for secret in endpoint.signing_secrets(now)]
    return {
        "content-type": "application/json",
        "user-agent": "CRM-Webhooks/1",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


def attempt(*, delivery, endpoint, now):
    """One POST of ``delivery`` and its outcome: succeeded, retry later, or failed (and maybe the endpoint off).

    The outcome is written with the endpoint and the delivery locked and read again: one deleted during the POST
    (its endpoint deleted by a manager, the cascade taking it) ends there, logged, with nothing written back, made
    again or scheduled (saved, it found no row: the job failed with a ``DatabaseError``); None is returned then.
    """
    body = json.dumps(delivery.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(endpoint=endpoint, message_id=delivery.message_id, body=body, now=now)
    answer = net.post(endpoint.url, body, headers)
    delivery.attempts += 1
    delivery.last_attempt_at = now
    delivery.response_status = answer.status
    delivery.response_body = answer.body
    delivery.error = answer.error
    delivery.duration_ms = answer.duration_ms
    delivery.claimed_until = None
    status = answer.status
    if status is not None and 300 <= status < 400 and not delivery.error:
        # Retried like a 5xx: the endpoint's URL can be corrected meanwhile, and the pending deliveries go there.
        delivery.error = _redirect_error(answer.headers.get("location", ""))[:500]
    disable = None
    if status is not None and 200 <= status < 300:
        delivery.status, delivery.next_attempt_at = Delivery.Status.SUCCEEDED, None
    elif status == 410:
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        disable = "The receiver answered 410 Gone."
    elif status is not None and 400 <= status < 500 and status not in RETRYABLE_4XX:
        delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
    else:
        wait = retry_delay(delivery.attempts)
        if status == 429 and wait is not None:
            wait = _retry_after(answer.headers.get("retry-after"), now) or wait
        if wait is None:
            delivery.status, delivery.next_attempt_at = Delivery.Status.FAILED, None
        else:
            delivery.next_attempt_at = now + wait
    with transaction.atomic():
        # The endpoint, then the delivery, as a delete of the endpoint locks them (and as the outcome writes them):
        # the other way round, a delete taking the endpoint between the two waited for the delivery, and this for it.
        gone = not locking(Endpoint.objects.filter(pk=endpoint.pk)).values_list("pk", flat=True).first()
        if gone or not locking(Delivery.objects.filter(pk=delivery.pk)).values_list("pk", flat=True).first():
            logger.info(
                "webhook delivery %s to %s deleted meanwhile: its outcome is dropped", delivery.pk, endpoint.url
            )
            return None
        delivery.save(
            update_fields=[
                "status",
                "attempts",
                "next_attempt_at",
                "last_attempt_at",
                "response_status",
                "response_body",
                "error",
                "duration_ms",
                "claimed_until",
            ]
        )
        succeeded = delivery.status == Delivery.Status.SUCCEEDED
        _record_health(endpoint=endpoint, succeeded=succeeded, now=now, disable=disable)
        if delivery.status == Delivery.Status.PENDING and endpoint.is_active:
            enqueue_run(endpoint.pk, eta=delivery.next_attempt_at)
    return delivery


def _redirect_error(location):
    location = location.replace("\x00", "")
    if location:
        return f"The receiver redirected to {location}; redirects are not followed: change the endpoint's URL."
    return "The receiver answered a redirect; redirects are not followed: change the endpoint's URL."


def _record_health(*, endpoint, succeeded, now, disable=None):
    if succeeded:
        if endpoint.failing_since is not None:
            Endpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        Endpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        endpoint.failing_since = now
    days = settings.WEBHOOKS_DISABLE_AFTER_DAYS
    if disable is None and now - endpoint.failing_since >= timedelta(days=days):
        disable = f"Every delivery failed for {days} days."
    if disable:
        disable_endpoint(endpoint=endpoint, reason=disable)


def disable_endpoint(*, endpoint, reason):
    """Stop sending to ``endpoint``; the managers see why in the admin, and ``services.endpoint_disabled`` tells."""
    turned_off = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_reason=reason[:255]
    )
    endpoint.is_active, endpoint.disabled_reason = False, reason[:255]
    if turned_off:
        services.endpoint_disabled(endpoint, reason[:255])


def due_endpoints(*, now):
    """Ids of active endpoints with a pending delivery due now (for the periodic sweep)."""
    return list(
        Delivery.objects.filter(status=Delivery.Status.PENDING, endpoint__is_active=True, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("endpoint_id", flat=True)
        .distinct()
    )
