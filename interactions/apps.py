from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _heal_sqlite_search_index(sender, using, **kwargs):
    from .search import SEARCH

    SEARCH.heal_after_migrate(using, "interactions", "0007_search_indexes")


class InteractionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "interactions"
    verbose_name = _("Interactions")

    def ready(self):
        from core import access, events

        from . import company_parts, customer_parts
        from .models import Interaction
        from .serializers import InteractionSerializer

        access.register_owner_path(self.get_model("Interaction"), "customer__owner")
        customer_parts.register()
        company_parts.register()
        # Every create, update and delete writes an event with the change (core/events.py).
        events.register(
            Interaction,
            name="interaction",
            serializer=InteractionSerializer,
        )
        post_migrate.connect(_heal_sqlite_search_index, sender=self)
