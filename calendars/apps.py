from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CalendarsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "calendars"
    verbose_name = _("Calendar feeds")

    def ready(self):
        from core.api.views import register_me_field

        from .feeds import feed_url_for

        register_me_field(
            "calendar_feed_url",
            {
                "type": "string",
                "format": "uri",
                "nullable": True,
                "description": "The user's private iCalendar feed of their open tasks; null when turned off.",
            },
            feed_url_for,
        )
