"""WSGI entry point: ``gunicorn crm_site.wsgi``.

Production settings are the default here; ``manage.py`` defaults to local ones.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.production")

application = get_wsgi_application()


def _warm_up():
    """Do here, once, what Django leaves to a process's first request: import the URLconf and build its lookups.

    That took about 100 ms of a process's first request (127 ms against 25 ms, in process). gunicorn
    forks its workers from the process that loaded this module (``preload_app`` in gunicorn.conf.py),
    so every worker, and each one that replaces a recycled worker, starts with them. Nothing here
    reads the database or opens a connection (tests/crm_site/test_wsgi.py).
    """
    from django.conf import settings
    from django.conf.urls.i18n import is_language_prefix_patterns_used
    from django.urls import reverse
    from django.utils import translation

    is_language_prefix_patterns_used(settings.ROOT_URLCONF)
    # Django keeps the lookups per language, and the request's language is the client's. The lookup every
    # request makes (the admin's prefix, core.timezones) builds the URLconf's lookups and its namespace's.
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            reverse("admin:index")


_warm_up()
