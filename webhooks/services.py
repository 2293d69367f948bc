"""What the webhooks app tells the rest of the CRM."""

import logging

from django.urls import reverse
from django.utils.translation import gettext as _

from core.access import managers
from notifications.services import notify

logger = logging.getLogger("crm.webhooks")


def endpoint_disabled(endpoint, reason):
    """``endpoint`` has just been turned off because of ``reason`` (a 410, or days of failures).

    Called once per disabling, in the transaction that disables it (so a notice
    written here commits or rolls back with it). The admin's list of endpoints
    shows the reason; every manager also gets an in-app notification and an email.
    """
    logger.warning("webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)
    notify(
        managers(),
        "webhook_disabled",
        _("Webhook endpoint disabled: %(url)s") % {"url": endpoint.url},
        _("Deliveries to %(url)s stopped: %(reason)s. Fix the receiver, then turn the endpoint on again.")
        % {"url": endpoint.url, "reason": reason},
        url=reverse("admin:webhooks_endpoint_change", args=[endpoint.pk]),
        email=True,
    )
