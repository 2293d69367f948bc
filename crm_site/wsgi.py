"""WSGI entry point: ``gunicorn crm_site.wsgi``.

Production settings are the default here; ``manage.py`` defaults to local ones.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.production")

application = get_wsgi_application()


def _warm_up():
    """Do here, once, what Django leaves to a process's first request: import the URLconf and build its lookups.

    That first request took about 60 ms more than the next ones. gunicorn forks its workers from the
    process that loaded this module (``preload_app`` in gunicorn.conf.py), so every worker, and each
    one that replaces a recycled worker, answers its first request as fast as the rest. Nothing here
    reads the database or opens a connection (tests/crm_site/test_wsgi.py).
    """
    from django.conf import settings
    from django.conf.urls.i18n import is_language_prefix_patterns_used
    from django.urls import URLResolver, get_resolver, reverse
    from django.utils import translation

    def build(resolver):
        resolver.reverse_dict  # noqa: B018 - builds the resolver's lookups, as its first use would
        for pattern in resolver.url_patterns:
            if isinstance(pattern, URLResolver):
                build(pattern)

    is_language_prefix_patterns_used(settings.ROOT_URLCONF)
    # Django keeps the lookups per language, and the request's language is the client's.
    for language, _name in settings.LANGUAGES:
        with translation.override(language):
            build(get_resolver())
            # The admin's namespace, which every request looks up (core.timezones), has a resolver of its own.
            reverse("admin:index")


_warm_up()
