"""WSGI entry point: ``gunicorn crm_site.wsgi``.

Production settings are the default here; ``manage.py`` defaults to local ones.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.production")

application = get_wsgi_application()
