"""Opportunity jobs, run by ``manage.py worker``.

- ``fold_pipeline_figures``: every ten minutes, sums the rows of differences the database adds to
  the pipeline figures (``opportunities/figures.py``) into one row per key, so that reading them
  stays a read of a few thousand rows however many deals change.
"""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from . import figures


@db_periodic_task(crontab(minute="*/10"))
def fold_pipeline_figures():
    figures.fold()
