from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpportunitiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "opportunities"
    verbose_name = _("Opportunities")

    def ready(self):
        from core import access

        from .customer_parts import register

        access.register_owner_path(self.get_model("Opportunity"), "customer__owner")
        access.register_owner_path(self.get_model("StageChange"), "opportunity__customer__owner")
        register()
