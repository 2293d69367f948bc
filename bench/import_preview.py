#!/usr/bin/env python3
"""Time the admin's import requests (preview and confirm) for the largest files the bounds allow,
and for hostile files beyond them.

    DATABASE_URL=sqlite:////tmp/import-bench.db .venv/bin/python bench/import_preview.py
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_bench .venv/bin/python bench/import_preview.py

Works on the database DATABASE_URL names (migrated here; other data may be
there). Sends each file to ``/admin/customers/customer/import/`` in process
through the full request stack as a superuser (a rep's imports are scoped but
cost the same), then confirms the valid ones, and prints the wall time of each
request, the rows counted, the queries a row and the CPU time of the process
for the valid files (the database server's own is not counted), and the
process's peak resident memory after them. The imported customers are deleted at the end. The bounds are the
settings' (DJANGO_IMPORT_MAX_ROWS, ...): set them to measure other values.
"""

import argparse
import io
import os
import resource
import statistics
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")
os.environ.setdefault("DJANGO_DEBUG", "false")  # DEBUG keeps every query in memory
URL = "/admin/customers/customer/"


def csv_file(rows):
    return "\n".join(",".join(row) for row in rows).encode()


def xlsx_file(rows, comment=b""):
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    if not comment:
        return buffer.getvalue()
    source, out = zipfile.ZipFile(buffer), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<sheetData>", b"<!--" + comment + b"--><sheetData>", 1)
            target.writestr(info.filename, data)
    return out.getvalue()


def noise(size):
    """Text that deflate compresses about 30 times: an upload under the body limit that unzips to ``size``."""
    import random

    generator = random.Random(size)
    return bytes(generator.choices(b"ab", weights=(96, 4), k=size))


def customers(count, tag, valid=True):
    header = ["name", "company", "email", "phone", "status"]
    return [header] + [
        [f"客户 {tag} {n}" if valid else "", f"公司 {n}", f"{tag}-{n}@example.com", f"138{n:08d}", "active"]
        for n in range(count)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from customers.models import Customer

    call_command("migrate", verbosity=0)
    setup_test_environment()  # responses keep their template context, read below
    user, _ = get_user_model().objects.get_or_create(
        username="bench-import", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    rows, cells = settings.IMPORT_MAX_ROWS, settings.IMPORT_MAX_CELL_CHARS
    print(
        f"bounds: {settings.IMPORT_MAX_BYTES} bytes, {rows} rows, {cells} characters a cell, "
        f"{settings.IMPORT_MAX_UNZIPPED_BYTES} bytes unzipped; database {settings.DATABASES['default']['ENGINE']}"
    )

    def counted(request):
        """``(wall seconds, CPU seconds, queries, response)`` of ``request()``; the queries counted as they run."""
        queries = []
        with connection.execute_wrapper(lambda execute, *args: queries.append(1) or execute(*args)):
            started, cpu = time.perf_counter(), time.process_time()
            response = request()
            return time.perf_counter() - started, time.process_time() - cpu, len(queries), response

    def post(content, file_format, name):
        return counted(
            lambda: client.post(
                f"{URL}import/",
                {"resource": "0", "format": file_format, "import_file": SimpleUploadedFile(name, content)},
            )
        )

    def confirm(preview):
        seconds, cpu, queries, response = counted(
            lambda: client.post(f"{URL}process_import/", preview.context["confirm_form"].initial)
        )
        assert response.status_code == 302, response.content[:500]
        return seconds, cpu, queries

    def outcome(response):
        if response.context.get("totals"):
            return ", ".join(f"{key} {value}" for key, value in response.context["totals"].items())
        errors = response.context["form"].errors.get("import_file", ["?"])
        return "refused: " + errors[0][:70]

    cases = [
        ("CSV, max rows, new customers", lambda run: (csv_file(customers(rows, f"c{run}")), "0", "c.csv"), True),
        ("XLSX, max rows, new customers", lambda run: (xlsx_file(customers(rows, f"x{run}")), "1", "x.xlsx"), True),
        ("CSV, max rows, every row invalid", lambda run: (csv_file(customers(rows, "e", False)), "0", "e.csv"), False),
        (
            "CSV, 1 MiB of 120,000 rows (beyond the rows bound)",
            lambda run: (b"name\n" + b"abcdefg\n" * 120_000, "0", "big.csv"),
            False,
        ),
        (
            "XLSX, 300 MB XML comment in the sheet",
            lambda run: (xlsx_file(customers(1, "b"), b"x" * (300 * 1024 * 1024)), "1", "bomb.xlsx"),
            False,
        ),
        (
            "XLSX, a comment filling the unzipped bound (ratio about 30)",
            lambda run: (
                xlsx_file(customers(1, f"i{run}"), noise(settings.IMPORT_MAX_UNZIPPED_BYTES - 65536)),
                "1",
                "c.xlsx",
            ),
            False,
        ),
    ]
    print(
        f"| file | size | preview (median of {args.runs}) | confirm | outcome "
        "| queries a row, preview / confirm | CPU, preview / confirm |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, build, confirmable in cases:
        previews, confirms = [], []
        for run in range(args.runs):
            content, file_format, name = build(run)
            *measured, response = post(content, file_format, name)
            previews.append(measured)
            if confirmable:
                confirms.append(confirm(response))
        median = [statistics.median(figures) for figures in zip(*previews, strict=True)]
        confirmed = [statistics.median(figures) for figures in zip(*confirms, strict=True)] if confirms else None
        confirm_text = f"{confirmed[0]:.2f} s" if confirmed else "-"
        rows_read = sum((response.context.get("totals") or {}).values())
        queries = f"{median[2] / rows_read:.1f}" if rows_read else "-"
        if confirmed:
            queries += f" / {confirmed[2] / rows_read:.1f}"
        cpu = f"{median[1]:.2f} s" + (f" / {confirmed[1]:.2f} s" if confirmed else "")
        print(
            f"| {label} | {len(content):,} B | {median[0]:.2f} s | {confirm_text} | {outcome(response)} "
            f"| {queries} | {cpu} |"
        )
        if label.startswith("CSV, max rows, every"):
            # Before the hostile files, which this script itself must build in memory.
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"(peak resident memory so far: {peak:.0f} MB)")
    Customer.objects.filter(email__endswith="@example.com", created_by=user).delete()


if __name__ == "__main__":
    main()
