"""The nightly rebuild of the duplicate candidates, run by ``manage.py worker``."""

import logging

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from . import services
from .models import Kind

logger = logging.getLogger("crm.duplicates")


@db_periodic_task(crontab(minute="30", hour="2"))
@lock_task("rebuild-duplicates")
def rebuild_duplicates():
    counts = {}
    for kind in Kind:
        counts[kind.value] = services.rebuild(kind)
        logger.info("duplicates of %s: %s", kind.value, counts[kind.value])
    return counts
