"""Webhook jobs, run by ``manage.py worker``.

- ``deliver_endpoint``: sends one endpoint's due deliveries in order; enqueued
  after the commit that wrote them, and at the time of each retry.
- ``deliver_due``: every minute, runs the endpoints with a delivery due, in
  case a scheduled retry was lost with the queue.
"""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import delivery


@db_task()
def deliver_endpoint(endpoint_id):
    return delivery.run_endpoint(endpoint_id)


@db_periodic_task(crontab(minute="*"))
def deliver_due():
    from django.utils import timezone

    for endpoint_id in delivery.due_endpoints(now=timezone.now()):
        deliver_endpoint(endpoint_id)
