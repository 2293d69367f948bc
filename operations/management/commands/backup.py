from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from operations.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the whole database to PATH while the server keeps running. "
        "SQLite: a copy made with SQLite's online backup (a plain SQLite file). PostgreSQL: a pg_dump "
        "archive in custom format (needs pg_dump on PATH, of the server's major version). "
        "Bring it back with 'manage.py restore PATH --yes'."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="File to write, e.g. backups/crm-2026-11-24.backup")
        parser.add_argument("--force", action="store_true", help="Overwrite PATH if it exists.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")

    def handle(self, *args, path, force, database, **options):
        if database not in connections:
            raise CommandError(f"Unknown database alias: {database}")
        try:
            size = backup(path, database, force=force)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        vendor = connections[database].vendor
        self.stdout.write(self.style.SUCCESS(f"Backed up the {vendor} database to {path} ({size:,} bytes)."))
