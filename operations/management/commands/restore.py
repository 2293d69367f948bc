import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from operations.backup import BackupError, check_backup, restore


class Command(BaseCommand):
    help = (
        "Replace ALL data in the database with a backup made by 'manage.py backup'. Everything written "
        "since that backup is lost. Asks for confirmation, or pass --yes. Afterwards run 'manage.py migrate' "
        "if the backup is older than the code."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="Backup file written by 'manage.py backup'.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")

    def handle(self, *args, path, yes, database, **options):
        if database not in connections:
            raise CommandError(f"Unknown database alias: {database}")
        try:
            check_backup(path, database)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        name = connections[database].settings_dict["NAME"]
        if not yes:
            if not sys.stdin.isatty():
                raise CommandError("Restoring replaces all data in the database; pass --yes to confirm.")
            answer = input(f"Replace ALL data in {name} with {path}? Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("Restore cancelled.")
        try:
            restore(path, database)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Restored {name} from {path}."))
