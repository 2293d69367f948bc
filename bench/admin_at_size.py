#!/usr/bin/env python3
"""Time every admin list, the board, the dashboard and a busy customer's page at size, on PostgreSQL.

    .venv/bin/python bench/admin_at_size.py build      # once: 1M customers, 5M interactions, 2M deals
    .venv/bin/python bench/admin_at_size.py measure --runs 7
    .venv/bin/python bench/admin_at_size.py drop       # the scratch database goes

``build`` creates the scratch database (``--database``, default ``crm_size_bench``;
it refuses a name without ``bench``), migrates it and fills it with SQL
``generate_series`` inserts: 20 reps, ``--companies`` companies, ``--customers``
customers over three years (statuses weighted, about one in twenty without an
owner), ``--interactions`` interactions, ``--opportunities`` opportunities (stages
weighted, one stage change each), open tasks for a tenth of the customers, and
one customer (``BUSY_NAME``) with 5,000 interactions. Secondary indexes are
dropped for the load and made again after it, and the pipeline figures the
triggers keep (``opportunities/figures.py``) counted once (the tasks' copies of their customers' names,
``tasks/customer_name.py``, are loaded with them); history tables stay empty.

``measure`` logs a manager in with Django's test ``Client`` (in process: server
time, no network) and requests each URL ``--runs`` times after one warm-up,
printing p50 and p95 in milliseconds, the SQL statements of one request and their
time (the rest is Python: templates, forms) as a markdown table. The URLs come
from the registered ModelAdmins: each changelist's default view, the first choice
of each list filter, a search ("Smith 4242") and one of common words ("Smith Acme"), and a sort by each sortable column (ascending); then the board, the dashboard, the busy
customer's change page, and a rep's own dashboard (signed in as that rep).
"""

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm_site.settings.local")

SERVER = "postgres://postgres@127.0.0.1:5432"
BUSY_NAME = "Busy Customer"
REPS = 20
# A rep's own dashboard (rep01 owns the customers left without an owner: none), signed in as that rep.
DASHBOARD_REP = "rep02"
REP_DASHBOARD = f"dashboard ({DASHBOARD_REP}'s own book)"
# Big tables whose secondary indexes are dropped for the load and made again after it.
BIG_TABLES = [
    "companies_company",
    "customers_customer",
    "interactions_interaction",
    "opportunities_opportunity",
    "opportunities_stagechange",
    "tasks_task",
]


def _sql_steps(args, rep_ids):
    reps = "(ARRAY[" + ",".join(str(i) for i in rep_ids) + "])"
    years = "interval '3 years'"
    return [
        (
            "companies",
            f"""
            INSERT INTO companies_company (id, name, name_key, domain, website, phone, address, industry,
                size, notes, created_at, updated_at, owner_id, custom_fields, tags)
            SELECT g, n, lower(n), NULL, '', '', '', (ARRAY['Software','Retail','Logistics','Health',''])[1 + g % 5],
                (ARRAY['1-10','11-50','51-200','201-1000','1001+',''])[1 + g % 6], '', t, t,
                {reps}[1 + g % {REPS}], '{{}}', '[]'
            FROM (SELECT g, (ARRAY['Acme','Globex','Initech','Umbrella','Hooli','Vandelay','星辰','华信'])[1 + g % 8]
                     || ' ' || (ARRAY['Systems','Logistics','Analytics','Foods','科技','贸易'])[1 + (g / 8) % 6]
                     || ' ' || g AS n,
                     now() - random() * {years} AS t
                  FROM generate_series(1, {args.companies}) g) s
            """,
        ),
        (
            "customers",
            f"""
            INSERT INTO customers_customer (id, name, company, company_id, email, phone, phone_e164, phone_national,
                status, created_at, updated_at, owner_id, custom_fields, tags)
            SELECT g,
                (ARRAY['Alice','Bob','Carla','Daniel','Elena','Farid','Grace','Hiro','王','李','张','刘'])[1 + g % 12]
                    || ' ' || (ARRAY['Anders','Brooks','Castro','Dubois','Ito','Smith','伟','芳','敏'])[1 + (g / 12) % 9]
                    || ' ' || g,
                c.name, c.id, 'c' || g || '@example.com',
                '+1 202 555 ' || lpad((g % 10000)::text, 4, '0'), '+1202555' || lpad((g % 10000)::text, 4, '0'),
                '202555' || lpad((g % 10000)::text, 4, '0'),
                (ARRAY['active','active','active','active','active','prospect','prospect','lead','lead',
                       'inactive'])[1 + floor(random() * 10)::int],
                t, t, CASE WHEN g % 20 = 0 THEN NULL ELSE {reps}[1 + g % {REPS}] END, '{{}}', '[]'
            FROM (SELECT g, now() - random() * {years} AS t FROM generate_series(1, {args.customers}) g) s
            JOIN companies_company c ON c.id = 1 + (g::bigint * 7919) % {args.companies}
            """,
        ),
        (
            "interactions",
            f"""
            INSERT INTO interactions_interaction (id, customer_id, interaction_type, notes, occurred_at, created_at)
            SELECT g, CASE WHEN g <= 5000 THEN 1 ELSE 2 + floor(random() * ({args.customers} - 1))::bigint END,
                (ARRAY['call','call','call','call','email','email','email','email','meeting','meeting',
                       'other'])[1 + floor(random() * 11)::int],
                (ARRAY['Discussed requirements','Sent a quote','On-site visit','Product demo','电话沟通需求',
                       '发送报价单'])[1 + g % 6],
                t, t
            FROM (SELECT g, now() - random() * {years} AS t FROM generate_series(1, {args.interactions}) g) s
            """,
        ),
        (
            "opportunities",
            f"""
            INSERT INTO opportunities_opportunity (id, customer_id, company_id, title, value, stage, probability,
                expected_close_date, closed_at, created_at, updated_at, custom_fields, tags)
            SELECT g, cid, 1 + (cid * 7919) % {args.companies},
                (ARRAY['Annual licence','Pilot project','Support renewal','Hardware order','年度采购'])[1 + g % 5]
                    || ' ' || g,
                round((random() * 100000)::numeric, 2), stage,
                CASE stage WHEN 'lead' THEN 10 WHEN 'proposal' THEN 40 WHEN 'negotiation' THEN 70
                           WHEN 'closed' THEN 100 ELSE 0 END,
                (t + random() * interval '180 days')::date,
                CASE WHEN stage IN ('closed', 'lost') THEN t + random() * interval '90 days' END, t, t,
                '{{}}', '[]'
            FROM (SELECT g, 1 + floor(random() * {args.customers})::bigint AS cid, now() - random() * {years} AS t,
                      (ARRAY['lead','lead','lead','lead','proposal','proposal','proposal','negotiation',
                             'negotiation','closed','closed','lost'])[1 + floor(random() * 12)::int] AS stage
                  FROM generate_series(1, {args.opportunities}) g) s
            """,
        ),
        (
            "stage changes",
            """
            INSERT INTO opportunities_stagechange (id, opportunity_id, from_stage, to_stage, changed_at)
            SELECT id, id, NULL, stage, created_at FROM opportunities_opportunity
            """,
        ),
        (
            "tasks",
            """
            INSERT INTO tasks_task (title, kind, due_at, due_is_date_only, notes, priority, outcome, created_at,
                updated_at, assignee_id, customer_id, customer_name, done_at)
            SELECT 'Follow up ' || c.id, 'call', now() + (random() - 0.5) * interval '30 days', false, '', 'normal',
                '', c.created_at, c.created_at, c.owner_id, c.id, c.name,
                CASE WHEN c.id % 3 = 0 THEN now() - random() * interval '30 days' END
            FROM customers_customer c WHERE c.id % 10 = 0 AND c.owner_id IS NOT NULL
            """,
        ),
        ("busy customer", f"UPDATE customers_customer SET name = '{BUSY_NAME}' WHERE id = 1"),
    ]


def _database_url(name):
    if "bench" not in name:
        sys.exit(f"refusing database {name!r}: a scratch database's name contains 'bench'")
    return f"{SERVER}/{name}"


def _server_run(sql):
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def build(args):
    from psycopg import sql as psql

    _server_run(psql.SQL("DROP DATABASE IF EXISTS {}").format(psql.Identifier(args.database)))
    _server_run(psql.SQL("CREATE DATABASE {}").format(psql.Identifier(args.database)))
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    rep_group, manager_group = Group.objects.get(name="Sales rep"), Group.objects.get(name="Sales manager")
    rep_ids = []
    for n in range(1, REPS + 1):
        rep = user_model.objects.create_user(f"rep{n:02}", password="bench-pass", is_staff=True)
        rep.groups.add(rep_group)
        rep_ids.append(rep.pk)
    manager = user_model.objects.create_user("manager", password="bench-pass", is_staff=True)
    manager.groups.add(manager_group)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = ANY(%s) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [BIG_TABLES],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        # No foreign-key triggers during the load (the rows are made consistent by construction).
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SELECT setseed(0.42)")
        for label, statement in _sql_steps(args, rep_ids):
            started = time.perf_counter()
            cursor.execute(statement)
            print(f"{label}: {cursor.rowcount} rows in {time.perf_counter() - started:.0f} s", flush=True)
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        started = time.perf_counter()
        for _, definition in indexes:
            cursor.execute(definition)
        print(f"{len(indexes)} indexes in {time.perf_counter() - started:.0f} s", flush=True)
        for table in BIG_TABLES:
            # The identity columns continue after the loaded ids.
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT coalesce(max(id), 1) FROM {table}))"
            )
            # What autovacuum leaves (it may be off on a shared server): statistics, and the visibility map
            # that index-only scans need.
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    from opportunities import figures

    # Loaded with the triggers off: the pipeline's figures are counted once (the tasks' copies of their
    # customers' names are in the load; the busy customer has no task).
    figures.rebuild()
    print("built", flush=True)


def _first_choice_params(model_admin, request, changelist):
    """The query parameters of each list filter's first real choice (after "All")."""
    found = []
    for spec in changelist.filter_specs:
        choices = [c for c in spec.choices(changelist) if not c.get("selected")]
        for choice in choices:
            query = choice.get("query_string", "")
            if query and query != "?":
                found.append((getattr(spec, "title", type(spec).__name__), query))
                break
    return found


def urls(client, manager):
    """(label, url) for every registered admin changelist's views, then the board, dashboard and customer page."""
    from django.contrib import admin
    from django.contrib.admin.views.main import ORDER_VAR
    from django.test import RequestFactory
    from django.urls import reverse

    from customers.models import Customer

    request = RequestFactory().get("/admin/")
    request.user = manager
    found = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(request):
            continue
        base = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        label = f"{model._meta.app_label}.{model._meta.model_name}"
        found.append((f"{label} list", base))
        changelist = model_admin.get_changelist_instance(request)
        for title, query in _first_choice_params(model_admin, request, changelist):
            found.append((f"{label} filter {title}", base + query))
        if model_admin.get_search_fields(request):
            found.append((f"{label} search", base + "?" + urlencode({"q": "Smith 4242"})))
            # Every word common: no narrow word to check the rows of.
            found.append((f"{label} search common words", base + "?" + urlencode({"q": "Smith Acme"})))
        for index, field in enumerate(changelist.list_display):
            if changelist.get_ordering_field(field) is not None:
                found.append((f"{label} sort {field}", base + "?" + urlencode({ORDER_VAR: index})))
    busy = Customer.objects.get(name=BUSY_NAME)
    found.append(("board", reverse("admin:opportunities_opportunity_board")))
    found.append(("dashboard", reverse("admin:index")))
    found.append(("customer page (5,000 interactions)", reverse("admin:customers_customer_change", args=[busy.pk])))
    found.append((REP_DASHBOARD, reverse("admin:index")))
    return found


def measure(args):
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    logging.disable(logging.WARNING)  # the request log would drown the table
    manager = get_user_model().objects.get(username="manager")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(manager)
    rep_client = Client(HTTP_HOST="127.0.0.1")
    rep_client.force_login(get_user_model().objects.get(username=DASHBOARD_REP))
    print("| URL | p50 ms | p95 ms | queries | SQL ms |\n|---|---:|---:|---:|---:|", flush=True)
    for label, url in urls(client, manager):
        if args.only and not any(part in label for part in args.only.split(",")):
            continue
        client_ = rep_client if label == REP_DASHBOARD else client
        captured = []

        def record(execute, sql, params, many, context, captured=captured):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                captured.append((time.perf_counter() - started, sql))

        try:
            with connection.execute_wrapper(record):
                response = client_.get(url)
        except Exception as error:  # noqa: BLE001 (a broken page is a row of the table, not the end of the run)
            print(f"| {label} | error {type(error).__name__}: {error} | | |", flush=True)
            continue
        if response.status_code != 200:
            print(f"| {label} | status {response.status_code} | | |", flush=True)
            continue
        timings = []
        try:
            for _ in range(args.runs):
                started = time.perf_counter()
                client_.get(url)
                timings.append((time.perf_counter() - started) * 1000)
        except Exception as error:  # noqa: BLE001 (a timeout set through PGOPTIONS)
            print(f"| {label} | error {type(error).__name__} | | |", flush=True)
            continue
        timings.sort()
        p95 = timings[min(len(timings) - 1, round(0.95 * (len(timings) - 1)))]
        sql_ms = sum(seconds for seconds, _ in captured) * 1000
        print(
            f"| {label} | {statistics.median(timings):.0f} | {p95:.0f} | {len(captured)} | {sql_ms:.0f} |", flush=True
        )
        if args.explain and statistics.median(timings) > 300:
            for seconds, sql in sorted(captured, key=lambda q: -q[0])[:2]:
                print(f"    {seconds * 1000:.0f} ms: {sql[:1500]}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["build", "measure", "drop"])
    parser.add_argument("--database", default="crm_size_bench")
    parser.add_argument("--companies", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--interactions", type=int, default=5_000_000)
    parser.add_argument("--opportunities", type=int, default=2_000_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--only", default="", help="measure only the URLs whose label contains one of these (a,b)")
    parser.add_argument("--explain", action="store_true", help="print the slowest SQL of each slow URL")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = _database_url(args.database)
    os.environ.setdefault("DJANGO_DEBUG", "0")
    if args.step == "drop":
        from psycopg import sql as psql

        _server_run(psql.SQL("DROP DATABASE IF EXISTS {}").format(psql.Identifier(args.database)))
        return
    {"build": build, "measure": measure}[args.step](args)


if __name__ == "__main__":
    main()
