from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _heal_sqlite_search_index(sender, using, **kwargs):
    from .search import SEARCH

    SEARCH.heal_after_migrate(using, "companies", "0002_search_indexes")


class CompaniesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "companies"
    verbose_name = _("Companies")

    def ready(self):
        from core import access, customfields, events, tags

        from .models import Company
        from .serializers import CompanySerializer

        # A rep also sees the companies of the customers they own (``customers`` adds that path).
        access.register_owner_path(Company, "owner")
        tags.register(Company, "companies")
        access.register_owner_path(Company.history.model, "owner")
        events.register(Company, name="company", serializer=CompanySerializer, verbs=("merged",))
        # Custom fields (core/customfields.py); a key may not take the name of an API field.
        customfields.register("companies", Company, reserved=CompanySerializer.Meta.fields)
        post_migrate.connect(_heal_sqlite_search_index, sender=self)
