"""The reminder jobs, run by ``manage.py worker`` every minute (see reminders/services.py)."""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import services

logger = logging.getLogger("crm.reminders")


@db_periodic_task(crontab(minute="*"))
def send_due_reminders():
    sent = services.send_due_reminders()
    if sent:
        logger.info("sent %s task reminders", sent)
    return sent


@db_periodic_task(crontab(minute="*"))
def send_digests():
    sent = services.send_digests()
    if sent:
        logger.info("sent %s daily digests", sent)
    return sent


@db_periodic_task(crontab(minute="*"))
def retry_emails():
    sent = services.retry_emails()
    if sent:
        logger.info("sent %s reminder or digest emails on a later try", sent)
    return sent
