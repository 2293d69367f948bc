"""What the webhooks app tells the rest of the CRM."""

import logging

logger = logging.getLogger("crm.webhooks")


def endpoint_disabled(endpoint, reason):
    """``endpoint`` has just been turned off because of ``reason`` (a 410, or days of failures).

    Called once per disabling, in the transaction that disables it (so a notice
    written here commits or rolls back with it). The admin's list of endpoints
    shows the reason to managers; this is the one place to tell them more
    (an in-app notification, an email).
    """
    logger.warning("webhook endpoint %s (%s) disabled: %s", endpoint.pk, endpoint.url, reason)
