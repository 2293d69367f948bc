from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpportunitiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "opportunities"
    verbose_name = _("Opportunities")

    def ready(self):
        from core import access, events, tags

        from . import company_parts, customer_parts
        from .models import Opportunity
        from .serializers import OpportunitySerializer

        access.register_owner_path(self.get_model("Opportunity"), "customer__owner")
        access.register_owner_path(self.get_model("StageChange"), "opportunity__customer__owner")
        tags.register(Opportunity, "opportunities")
        customer_parts.register()
        company_parts.register()
        # Every create, update and delete writes an event with the change (core/events.py).
        events.register(
            Opportunity,
            name="opportunity",
            serializer=OpportunitySerializer,
            also={"opportunity.stage_changed": lambda changes: "stage" in changes},
        )
