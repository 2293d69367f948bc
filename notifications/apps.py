from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class NotificationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "notifications"
    verbose_name = _("Notifications")

    def ready(self):
        from core import access

        # A notification is its recipient's alone, whatever their role: the views filter by
        # recipient; the owner path is declared for the reads that go through scope().
        access.register_owner_path(self.get_model("Notification"), "recipient")
