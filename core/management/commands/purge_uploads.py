from django.conf import settings
from django.core.management.base import BaseCommand

from core.uploads import purge_abandoned_uploads


class Command(BaseCommand):
    help = (
        "Delete admin import uploads whose preview was never confirmed, once they are older than "
        "DJANGO_IMPORT_UPLOAD_MAX_AGE_HOURS (default 3). Safe to run at any time, e.g. every hour."
    )

    def handle(self, *args, **options):
        removed = purge_abandoned_uploads()
        self.stdout.write(
            f"Removed {removed} abandoned upload(s) older than {settings.IMPORT_UPLOAD_MAX_AGE_HOURS} hours "
            f"from {settings.IMPORT_UPLOAD_DIR}."
        )
