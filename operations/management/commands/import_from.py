from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.sheets import ImportFileError
from core.tables import FileRefused, Limits, check_size
from operations.management.commands._sheet_import import (
    add_bound_arguments,
    deadlocks_stop_the_import,
    rows_rejected,
)
from operations.switching import REJECTED, SourceFile, import_files
from operations.vendors import VENDORS


class Command(BaseCommand):
    help = (
        "Import the CSV or XLSX exports of HubSpot (companies, contacts, deals) or Pipedrive (organizations, "
        "persons, deals), in one run: companies first, then people, then deals, so that relations are restored "
        "(a contact's company, a deal's person and organisation). Records are matched by external_id "
        '("hubspot:<Record ID>"), email or company domain and updated; a second run of the same files changes '
        "nothing. Rejected rows are reported with their file and line. See docs/switching.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("vendor", choices=sorted(VENDORS), help="The CRM the files were exported from.")
        parser.add_argument("files", nargs="+", help="Paths of the exported .csv or .xlsx files (any order).")
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report, but write nothing.")
        parser.add_argument(
            "--owner",
            help="Username of the owner of the new records (default: the user the export's owner column names, "
            "by email or username, else none).",
        )
        add_bound_arguments(parser, per_file=" per file")

    def handle(self, *args, vendor, files, dry_run, owner, max_rows, max_bytes, **options):
        limits = Limits.from_options(max_rows, max_bytes)
        owner_user = None
        if owner:
            owner_user = get_user_model().objects.filter(username=owner, is_active=True).first()
            if owner_user is None:
                raise CommandError(f"No active user {owner!r}.")
        sources = []
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{path} does not exist or is not a file.")
            try:
                check_size(path.stat().st_size, limits)  # before reading it
            except FileRefused as exc:
                raise CommandError(f"{path}: {exc}") from exc
            sources.append(SourceFile(name=path.name, data=path.read_bytes()))
        try:
            with deadlocks_stop_the_import():
                result = import_files(sources, vendor=vendor, owner=owner_user, dry_run=dry_run, limits=limits)
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        for file_name, label, ignored in result.files:
            self.stdout.write(
                f"{file_name}: {label}" + (f"; ignoring columns: {', '.join(ignored)}" if ignored else "")
            )
        for row in result.rejected:
            self.stderr.write(f"{row.file} line {row.line}: rejected: {'; '.join(row.reasons)}")
        for row in result.rows:
            if row.notes and row.action != REJECTED:
                self.stdout.write(f"{row.file} line {row.line}: {'; '.join(row.notes)}")
        would = "would be " if dry_run else ""
        for kind, counts in result.counts().items():
            figures = ", ".join(f"{number} {would}{action}" for action, number in counts.items() if action != REJECTED)
            self.stdout.write(f"{kind}: {figures}, {counts[REJECTED]} rejected")
        if dry_run:
            self.stdout.write("Nothing was written (--dry-run).")
        elif result.changeset.pk is not None:
            pk = result.changeset.pk
            self.stdout.write(f"Changeset {pk} (undo: the admin's Changesets page, or POST /api/changesets/{pk}/undo).")
        if result.rejected:
            written = "nothing was written (--dry-run)" if dry_run else "the other rows were written"
            raise CommandError(f"{rows_rejected(len(result.rejected))}; {written}.")
