import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from operations.legacy import TABLES, LegacyDatabase, LegacyError, LegacyImport
from operations.management.commands._sheet_import import deadlocks_stop_the_import, whole_number


class _RollBack(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Move the data of the original Flask CRM into this database: give the path of its SQLite file "
        "(crm.db). Customers, interactions and opportunities keep their ids, timestamps (stored there in "
        "UTC) and relations. Rows that cannot be brought over (invalid email or status, duplicate email, "
        "an interaction or opportunity whose customer does not exist, ...) are skipped and listed with the "
        "reason; fix them in the old file and run again. Rows already here are left alone, so running it "
        "twice changes nothing. Everything is written in one transaction."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Path of the original CRM's SQLite database file.")
        parser.add_argument("--dry-run", action="store_true", help="Report what would be imported, write nothing.")
        parser.add_argument(
            "--show-skipped",
            type=whole_number,
            default=20,
            metavar="N",
            help="List at most N skipped rows per table (default 20; 0 lists all).",
        )

    def handle(self, *args, path, dry_run, show_skipped, **options):
        try:
            legacy = LegacyDatabase(path)
        except LegacyError as exc:
            raise CommandError(str(exc)) from exc
        try:
            found = ", ".join(f"{kind} (table {table})" for kind, table in legacy.tables.items())
            self.stdout.write(f"Reading {path}: {found}")
            for kind in TABLES:
                if kind not in legacy.tables:
                    self.stdout.write(self.style.WARNING(f"No {kind} table: no {kind} imported."))
            importer = LegacyImport(legacy, progress=self._progress)
            try:
                with deadlocks_stop_the_import(), transaction.atomic():
                    reports = importer.run()
                    if dry_run:
                        raise _RollBack
            except _RollBack:
                pass
            except LegacyError as exc:
                raise CommandError(f"{exc} Nothing was imported.") from exc
        finally:
            legacy.close()

        for report in reports:
            verb = "would import" if dry_run else "imported"
            self.stdout.write(
                f"{report.kind}: {report.read} read, {verb} {report.imported}, "
                f"{report.present} already here, skipped {len(report.skipped)}"
            )
            listed = report.skipped if show_skipped == 0 else report.skipped[:show_skipped]
            for legacy_id, reason in listed:
                self.stdout.write(
                    f"  skipped {report.kind[:-1] if report.kind != 'opportunities' else 'opportunity'} {legacy_id}: {reason}"
                )
            if len(listed) < len(report.skipped):
                self.stdout.write(f"  ... and {len(report.skipped) - len(listed)} more (--show-skipped 0 lists all)")
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        else:
            self.stdout.write(self.style.SUCCESS("Done."))

    @staticmethod
    def _progress(kind, total):
        return tqdm(total=total, desc=kind, unit=" rows", disable=None, file=sys.stderr)
