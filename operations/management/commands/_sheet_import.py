"""The base of the spreadsheet import commands (``import_customers``, ``import_companies``), and what every import
command shares (``deadlocks_stop_the_import``, ``rows_rejected``)."""

import argparse
import csv
import hashlib
import os
import sys
from contextlib import contextmanager, nullcontext

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, transaction
from tqdm import tqdm

from core import changesets
from core.rowlocks import is_deadlock
from core.sheets import ImportFileError, NotText
from core.tables import Limits


class _RollBack(Exception):
    pass


class SheetImportCommand(BaseCommand):
    """``manage.py import_<records> FILE``: a subclass names ``importer`` (a ``core.sheets.SheetImport``),
    ``open_sheet`` (with the app's columns), ``records`` (plural, for the help) and its ``help``."""

    importer = None
    open_sheet = None
    records = "records"

    def add_arguments(self, parser):
        keys = " or ".join(self.importer.keys)
        parser.add_argument("file", help="Path of the .csv or .xlsx file.")
        parser.add_argument("--dry-run", action="store_true", help="Check every row and report, but write nothing.")
        parser.add_argument(
            "--update-existing",
            action="store_true",
            help=f"Update {self.records} whose {keys} matches a row (empty cells keep the current value).",
        )
        parser.add_argument(
            "--atomic", action="store_true", help="All or nothing: write no row at all if any row is rejected."
        )
        parser.add_argument("--encoding", help="Encoding of a CSV file (default: try utf-8-sig, then gb18030).")
        add_bound_arguments(parser)

    def handle(self, *args, file, dry_run, update_existing, atomic, encoding, max_rows, max_bytes, **options):
        importer = self.importer(update_existing=update_existing, dry_run=dry_run)
        limits = Limits.from_options(max_rows, max_bytes)
        rolled_back = False
        try:
            sheet = type(self).open_sheet(file, encoding=encoding, limits=limits)
            if sheet.ignored:
                self.stdout.write(f"Ignoring columns: {', '.join(sheet.ignored)}")
            with (
                deadlocks_stop_the_import(),
                changesets.recording("import", user=None, label=os.path.basename(file), source=_source(file)) as cs,
                transaction.atomic() if atomic else nullcontext(),
            ):
                with tqdm(desc="Rows", unit=" rows", disable=None, file=sys.stderr) as progress:
                    report = importer.run(sheet, progress)
                if atomic and report.rejected:
                    raise _RollBack
        except _RollBack:
            rolled_back = True
        except NotText as exc:
            raise CommandError(f"{exc} Or pass --encoding with the file's encoding (cp1252: Western Windows).") from exc
        except ImportFileError as exc:
            raise CommandError(str(exc)) from exc
        except LookupError as exc:
            raise CommandError(f"Unknown encoding: {encoding}") from exc
        except (UnicodeDecodeError, csv.Error) as exc:
            raise CommandError(f"Cannot read {file}: {exc}") from exc

        for line, message in report.skipped:
            self.stdout.write(f"line {line}: skipped: {message}")
        for line, message in report.rejected:
            self.stderr.write(f"line {line}: rejected: {message}")

        hypothetical = dry_run or rolled_back
        unchanged = f"{report.unchanged} already as in the file, " if report.unchanged else ""
        summary = (
            f"{'Would create' if hypothetical else 'Created'} {report.created}, "
            f"{'would update' if hypothetical else 'updated'} {report.updated}, {unchanged}"
            f"skipped {len(report.skipped)} existing, rejected {len(report.rejected)} of {report.rows} rows."
        )
        if dry_run:
            summary += " Nothing was written (--dry-run)."
        if cs.pk is not None and not rolled_back:
            summary += f" Changeset {cs.pk} (undo: the admin's Changesets page, or POST /api/changesets/{cs.pk}/undo)."
        if not report.rejected:
            self.stdout.write(self.style.SUCCESS(summary))
            return
        self.stdout.write(summary)
        if rolled_back:
            raise CommandError(f"{rows_rejected(len(report.rejected))}; nothing was written (--atomic).")
        written = "nothing was written (--dry-run)" if dry_run else "the other rows were written"
        raise CommandError(f"{rows_rejected(len(report.rejected))}; {written}.")


def add_bound_arguments(parser, *, per_file=""):
    """``--max-rows`` and ``--max-bytes``: the import bounds raised for one run (``core.tables.Limits.from_options``)."""
    parser.add_argument(
        "--max-rows",
        type=positive_whole_number,
        help=f"Accept up to this many rows{per_file} for this run (default: DJANGO_IMPORT_MAX_ROWS, as in the admin).",
    )
    parser.add_argument(
        "--max-bytes",
        type=positive_whole_number,
        help="Accept files of up to this many bytes for this run (default: DJANGO_IMPORT_MAX_BYTES); an XLSX file "
        "may then unzip to 16 times as much.",
    )


def positive_whole_number(value):
    """An option's value of 1 or more (a bound of 0 or below would refuse every file, or mean the default)."""
    return _whole_number(value, 1, "positive whole number")


def whole_number(value):
    """An option's value of 0 or more (a count, where 0 means all)."""
    return _whole_number(value, 0, "whole number")


def _whole_number(value, least, what):
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise argparse.ArgumentTypeError(f"invalid {what} value: {value!r}")
    return number


@contextmanager
def deadlocks_stop_the_import():
    """Stop an import command with a ``CommandError`` when PostgreSQL aborts its transaction in a deadlock
    (``rowlocks.is_deadlock``), rather than with the database error's traceback. Entered outside the import's
    transaction, so that it is rolled back whole first: nothing of the import is written."""
    try:
        yield
    except OperationalError as exc:
        if not is_deadlock(exc):
            raise
        raise CommandError(
            "Another change of the same records was under way at the same moment: nothing was written. "
            "Run the import again."
        ) from exc


def rows_rejected(count):
    return "1 row was rejected" if count == 1 else f"{count} rows were rejected"


def _source(path):
    """The file's name and sha256, for the changeset."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"file": os.path.basename(path), "sha256": digest.hexdigest()}
