#!/usr/bin/env python3
"""Time the full rebuild of the duplicate candidates and the per-create hint at size, on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres crm_dedupe_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_dedupe_bench .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/crm_dedupe_bench .venv/bin/python bench/duplicates.py \
        --customers 1000000
    dropdb -h 127.0.0.1 -U postgres crm_dedupe_bench

Works on a scratch database (it empties the customers and companies tables): writes
``--companies`` companies and ``--customers`` customers with SQL ``generate_series``
(Latin and Chinese names; one customer in a hundred entered twice: the name in
lower case, no email, the same number and company), then times
``duplicates.services.rebuild`` for customers and ``POST /api/customers`` of
``--creates`` new customers through the full request stack (half of them alike an
existing one), with the ``duplicates`` hint's own share of each.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")

FIRST = (
    "James Mary Robert Patricia Michael Linda David Elizabeth William Barbara Richard Susan Joseph Jessica "
    "Thomas Sarah Charles Karen Daniel Nancy".split()
)
LAST = (
    "Anderson Baker Carter Dalton Evans Fischer Garcia Hughes Ivanov Jensen Kowalski Lambert Moreau Novak "
    "Olsen Petrov Quinn Rossi Schmidt Tanaka Ueda Vargas Wagner".split()
)
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡")
GIVEN = list("伟芳娜英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华志海燕东国红")


def _array(values):
    return "ARRAY[" + ", ".join("'" + value + "'" for value in values) + "]"


def seed(cursor, customers, companies):
    cursor.execute("TRUNCATE customers_customer, companies_company RESTART IDENTITY CASCADE")
    cursor.execute("TRUNCATE duplicates_duplicatekey, duplicates_duplicatecandidate")
    cursor.execute(
        "INSERT INTO companies_company (name, name_key, domain, website, phone, address, industry, size, notes, "
        "created_at, updated_at, custom_fields, tags) "
        "SELECT 'Firm ' || n, 'firm ' || n, 'firm' || n || '.example', '', '', '', '', '', '', now(), now(), "
        "'{}'::jsonb, '[]'::jsonb FROM generate_series(1, %s) AS n",
        [companies],
    )
    first, last, surnames, given = _array(FIRST), _array(LAST), _array(SURNAMES), _array(GIVEN)
    # k: the person's place among their company's people (n / companies), so colleagues' names differ.
    k = f"(n / {int(companies)})"
    name = (
        f"CASE WHEN n %% 2 = 1 THEN ({first})[1 + ({k} * 7) %% 20] || ' ' || ({last})[1 + ({k} * 3 + {k} / 20) %% 23] "
        f"ELSE ({surnames})[1 + {k} %% 15] || ({given})[1 + ({k} / 15 + {k}) %% 30] || ({given})[1 + n %% 30] END"
    )
    cursor.execute(
        "INSERT INTO customers_customer (name, company_id, company, email, phone, phone_e164, phone_national, "
        "status, created_at, updated_at, custom_fields, tags) "
        f"SELECT {name}, 1 + n %% %s, 'Firm ' || (1 + n %% %s), 'p' || n || '@firm' || (1 + n %% %s) || '.example', "
        "'+86 139' || lpad(n::text, 8, '0'), '+86139' || lpad(n::text, 8, '0'), '139' || lpad(n::text, 8, '0'), "
        "'active', now(), now(), "
        "'{}'::jsonb, '[]'::jsonb FROM generate_series(1, %s) AS n",
        [companies, companies, companies, customers],
    )
    twice = customers // 100
    cursor.execute(
        "INSERT INTO customers_customer (name, company_id, company, email, phone, phone_e164, phone_national, "
        "status, created_at, updated_at, custom_fields, tags) "
        "SELECT lower(name), company_id, company, NULL, phone, phone_e164, phone_national, status, now(), now(), "
        "custom_fields, tags "
        "FROM customers_customer WHERE id <= %s",
        [twice],
    )
    cursor.execute("ANALYZE")
    return twice


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=20_000)
    parser.add_argument("--creates", type=int, default=200)
    parser.add_argument("--skip-seed", action="store_true")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client
    from knox.models import get_token_model

    from customers import parts
    from duplicates import services
    from duplicates.models import Kind

    if connection.vendor != "postgresql":
        sys.exit("Run this on PostgreSQL (a scratch database: it empties customers and companies).")
    if not args.skip_seed:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            twice = seed(cursor, args.customers, args.companies)
        print(
            f"seeded {args.customers + twice:,} customers ({twice:,} entered twice) in {time.perf_counter() - started:.0f} s"
        )

    started = time.perf_counter()
    counts = services.rebuild(Kind.CUSTOMER)
    print(f"rebuild: {time.perf_counter() - started:.1f} s {counts}")

    user, _ = get_user_model().objects.get_or_create(username="bench-duplicates")
    user.groups.add(Group.objects.get(name="Sales manager"))
    _, token = get_token_model().objects.create(user)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    hint, hint_times = parts.CREATE_HINTS["duplicates"], []

    def timed_hint(record, request):
        began = time.perf_counter()
        try:
            return hint(record, request)
        finally:
            hint_times.append(time.perf_counter() - began)

    parts.CREATE_HINTS["duplicates"] = timed_hint
    request_times, hinted = [], 0
    for n in range(args.creates):
        i = 1 + n * 4999 % args.customers
        body = {"name": f"New Person {n}", "phone": f"+86 138{n:08d}"}
        if n % 2 == 0:  # the number of an existing customer and their company: a probable duplicate
            with connection.cursor() as cursor:
                cursor.execute("SELECT name, phone, company_id FROM customers_customer WHERE id = %s", [i])
                name, phone, company_id = cursor.fetchone()
            body = {"name": name.upper(), "phone": phone, "company_id": company_id}
        began = time.perf_counter()
        response = client.post("/api/customers", body, content_type="application/json")
        request_times.append(time.perf_counter() - began)
        assert response.status_code == 201, response.content[:300]
        hinted += bool(response.json()["data"].get("duplicates"))

    def percentiles(values):
        ordered = sorted(values)
        return statistics.median(ordered) * 1000, ordered[int(len(ordered) * 0.95) - 1] * 1000

    print(f"create: {args.creates} requests, {hinted} answered with a duplicates hint")
    print("POST /api/customers: p50 {:.1f} ms, p95 {:.1f} ms".format(*percentiles(request_times)))
    print("its duplicates hint: p50 {:.1f} ms, p95 {:.1f} ms".format(*percentiles(hint_times)))


if __name__ == "__main__":
    main()
