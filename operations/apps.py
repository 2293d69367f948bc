from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OperationsConfig(AppConfig):
    """The operator's commands over the whole CRM: demo data, backup and restore, imports, accounts."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "operations"
    verbose_name = _("Operations")

    def ready(self):
        from core import access

        from .models import ColumnMapping

        # A user's own: nobody else sees the mappings they saved.
        access.register_owner_path(ColumnMapping, "user")
