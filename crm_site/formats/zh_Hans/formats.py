"""Simplified Chinese formats: Django's, with amounts grouped by thousands (1,234,567.50), as sales staff write them."""

from django.conf.locale.zh_Hans.formats import *  # noqa: F403

THOUSAND_SEPARATOR = ","
NUMBER_GROUPING = 3
