from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _heal_sqlite_search_index(sender, using, **kwargs):
    from .search import SEARCH

    SEARCH.heal_after_migrate(using, "opportunities", "0010_search_indexes")


class OpportunitiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "opportunities"
    verbose_name = _("Opportunities")

    def ready(self):
        from core import access, customfields, events, tags

        from . import company_parts, customer_parts
        from .models import Opportunity
        from .serializers import OpportunitySerializer

        access.register_owner_path(self.get_model("Opportunity"), "customer__owner")
        access.register_owner_path(self.get_model("StageChange"), "opportunity__customer__owner")
        tags.register(Opportunity, "opportunities")
        customer_parts.register()
        company_parts.register()
        # Custom fields (core/customfields.py); a key may not take the name of an API field.
        customfields.register("opportunities", Opportunity, reserved=OpportunitySerializer.Meta.fields)
        # Every create, update and delete writes an event with the change (core/events.py).
        events.register(
            Opportunity,
            name="opportunity",
            serializer=OpportunitySerializer,
            also={"opportunity.stage_changed": lambda changes: "stage" in changes},
        )
        post_migrate.connect(_heal_sqlite_search_index, sender=self)
