from django.core.management.base import BaseCommand

from core.maintenance import purge_idempotency_keys
from core.models import IdempotencyKey


class Command(BaseCommand):
    help = (
        "Delete stored Idempotency-Key responses older than 24 hours. Expired keys are also "
        "ignored (and replaced) when reused, so this only reclaims space; the worker (manage.py worker) "
        "already runs it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count the expired keys without deleting them.")

    def handle(self, *args, dry_run=False, **options):
        expired = IdempotencyKey.objects.expired()
        if dry_run:
            self.stdout.write(f"{expired.count()} expired idempotency keys would be deleted.")
            return
        deleted = purge_idempotency_keys()
        self.stdout.write(self.style.SUCCESS(f"Deleted {deleted} expired idempotency keys."))
