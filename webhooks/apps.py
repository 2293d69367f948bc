from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebhooksConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "webhooks"
    verbose_name = _("Webhooks")

    def ready(self):
        from core import events

        from .delivery import fan_out

        # After each commit that wrote events, the worker gives them to fan_out (core/tasks.py).
        events.register_dispatcher(fan_out)
