"""``manage.py purge_custom_field <model> <key>``: remove the stored values of a deleted custom field."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core import customfields


class Command(BaseCommand):
    help = (
        "Remove the values of a deleted custom field from every record of a model (customers, companies, "
        "opportunities). Refused while the field is defined. Records keep their other values; nothing else changes."
    )

    def add_arguments(self, parser):
        parser.add_argument("model", help="customers, companies or opportunities")
        parser.add_argument("key", help="the custom field's key")

    def handle(self, *args, model, key, **options):
        try:
            with transaction.atomic():
                count = customfields.purge(model, key)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Removed {key!r} from {count} record(s) of {model}.")
