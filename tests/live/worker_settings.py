"""Production settings plus a dispatcher that fails twice: the worker of the retry test runs with these."""

from crm_site.settings.production import *  # noqa: F403
from crm_site.settings.production import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.live.flaky_dispatch.FlakyDispatchConfig"]
