import sys

from django.core.management.base import BaseCommand
from tqdm import tqdm

from duplicates import services
from duplicates.models import Kind

MODELS = {"customers": Kind.CUSTOMER, "companies": Kind.COMPANY}


class Command(BaseCommand):
    help = (
        "Rebuild the list of possible duplicates (the admin's review queue, GET /api/duplicates): customers "
        "with the same email or phone, or a similar name at the same company or with the same email local "
        "part; companies with the same domain (domain, website or their people's work email) or a similar "
        'name. Pairs marked "not a duplicate" stay so. The worker runs this every night at 02:30.'
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--model", choices=sorted(MODELS), help="Rebuild only customers or only companies (default: both)."
        )

    def handle(self, *args, model=None, **options):
        kinds = [MODELS[model]] if model else list(MODELS.values())
        for kind in kinds:
            # The pairs' total is unknown until they are read: the bar counts them.
            with tqdm(desc=f"{kind.value} pairs compared", unit=" pairs", disable=None, file=sys.stderr) as bar:
                counts = services.rebuild(kind, progress=bar.update)
            self.stdout.write(
                f"{kind.value}: {counts['records']} records, {counts['pairs_compared']} pairs compared, "
                f"{counts['open']} open ({counts['added']} new, {counts['removed']} no longer alike)."
            )
