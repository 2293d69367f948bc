from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _heal_sqlite_search_index(sender, using, **kwargs):
    """Recreate the SQLite search triggers if a later migration remade the customers table."""
    from django.db import connections
    from django.db.migrations.recorder import MigrationRecorder

    from .search import ensure_sqlite_search_index

    connection = connections[using]
    if connection.vendor != "sqlite":
        return
    applied = MigrationRecorder(connection).applied_migrations()
    if ("customers", "0004_search_indexes") not in applied:
        return
    with connection.cursor() as cursor:
        ensure_sqlite_search_index(cursor)


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"
    verbose_name = _("Customers")

    def ready(self):
        from core import access, customfields, events, tags

        from .company_parts import register
        from .customer_parts import register as register_own_timeline
        from .models import Customer
        from .serializers import CustomerSerializer

        access.register_owner_path(Customer, "owner")
        tags.register(Customer, "customers")
        access.register_owner_path(Customer.history.model, "owner")
        register()
        # Custom fields (core/customfields.py); a key may not take the name of an API field.
        customfields.register("customers", Customer, reserved=CustomerSerializer.Meta.fields)
        register_own_timeline()
        # Every create, update and delete writes an event with the change (core/events.py).
        events.register(
            Customer,
            name="customer",
            serializer=CustomerSerializer,
            verbs=("merged",),
        )
        post_migrate.connect(_heal_sqlite_search_index, sender=self)
