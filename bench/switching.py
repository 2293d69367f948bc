#!/usr/bin/env python3
"""Time ``import_from hubspot`` (``operations.switching.import_files``) on generated exports.

    DATABASE_URL=sqlite:////tmp/switch-bench.db .venv/bin/python bench/switching.py --rows 2000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/switching.py --rows 2000

Works on the database DATABASE_URL names (migrated here). Builds HubSpot exports of
``--rows`` companies, contacts (each with its company) and deals (each with its
contact and company), then times a dry run, the import, and a second import of the
same files (which changes nothing), and prints the rows per second of each. The
imported records are deleted at the end.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")


def files(rows):
    companies = ["Record ID,Company name,Company Domain Name,Industry"]
    contacts = ["Record ID,First Name,Last Name,Email,Associated Company IDs,Lifecycle Stage"]
    deals = ["Record ID,Deal Name,Deal Stage,Amount,Close Date,Associated Contact IDs,Associated Company IDs"]
    for n in range(rows):
        companies.append(f"{n},Bench 公司 {n},bench{n}.example,Software")
        contacts.append(f"{n},名{n},Bench,bench{n}@bench.example,{n},Customer")
        deals.append(f"{n},Deal {n},Contract Sent,{1000 + n},2027-01-31,{n},{n}")
    return [("companies.csv", companies), ("contacts.csv", contacts), ("deals.csv", deals)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000, help="Records of each kind.")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from dataclasses import replace

    from companies.models import Company
    from core.tables import Limits
    from operations.switching import SourceFile, import_files

    limits = replace(Limits.from_settings(), max_rows=args.rows + 1, max_bytes=64 * 1024 * 1024)
    sources = [SourceFile(name=name, data="\n".join(lines).encode()) for name, lines in files(args.rows)]
    total = 3 * args.rows
    for label, dry_run in (("dry run", True), ("import", False), ("second import (no change)", False)):
        started = time.perf_counter()
        result = import_files(sources, vendor="hubspot", dry_run=dry_run, limits=limits)
        seconds = time.perf_counter() - started
        print(f"{label}: {total} rows in {seconds:.1f} s ({total / seconds:.0f} rows/s); {result.counts()}")
    from customers.models import Customer

    Customer.objects.filter(email__endswith="@bench.example").delete()  # and their deals
    Company.objects.filter(domain__endswith="bench.example").delete()


if __name__ == "__main__":
    main()
