from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DuplicatesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "duplicates"
    verbose_name = _("Duplicates")

    def ready(self):
        from companies import parts as company_parts
        from core import merges
        from customers import parts as customer_parts

        from . import services
        from .models import Kind, models_by_kind

        # A record created through the API answers with the records it probably duplicates.
        customer_parts.add_create_hint("duplicates", services.hint_for(Kind.CUSTOMER))
        company_parts.add_create_hint("duplicates", services.hint_for(Kind.COMPANY))
        # A merge settles the pairs among its records.
        for model in models_by_kind().values():
            merges.merged.connect(services.record_merge, sender=model, dispatch_uid=f"duplicates-{model.__name__}")
