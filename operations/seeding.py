"""Deterministic demo data at scale, written straight into the tables.

:func:`generate` yields batches of plain row tuples (customers with their
companies, interactions, opportunities and stage changes); :class:`BulkWriter` writes them
with ``executemany`` on SQLite and ``COPY`` on PostgreSQL. Going around the ORM
is what makes a million customers a matter of minutes: building model instances
costs more than the database work. The column lists below follow the models,
and ``tests/operations/test_seed_demo.py`` reads the rows back through the ORM.
"""

import multiprocessing
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.color import no_style
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder

from companies import search as company_search
from companies.models import Company
from companies.names import name_key
from core import phones
from customers import search as customer_search
from customers.models import Customer
from interactions import search as interaction_search
from interactions.models import Interaction
from opportunities import search as opportunity_search
from opportunities.models import Opportunity, StageChange
from opportunities.services import stage_fields

# The one customer that a selective search finds (same name as in the original CRM's loader).
UNIQUE_NAME = "Zyxwvut Unique"

CN_SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"),
    ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"),
    ("马", "ma"), ("朱", "zhu"), ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("林", "lin"),
]  # fmt: skip
CN_GIVEN = [
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("强", "qiang"), ("磊", "lei"), ("洋", "yang"), ("艳", "yan"), ("勇", "yong"), ("军", "jun"),
    ("杰", "jie"), ("娟", "juan"), ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"),
    ("建华", "jianhua"), ("晓东", "xiaodong"), ("海燕", "haiyan"), ("志强", "zhiqiang"),
]  # fmt: skip
EN_FIRST = [
    "Alice", "Bob", "Carla", "Daniel", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemal",
    "Lena", "Marco", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera",
]  # fmt: skip
EN_LAST = [
    "Anders", "Brooks", "Castro", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Lopez", "Moreau", "Novak", "Okafor", "Petrov", "Smith", "Taylor",
]  # fmt: skip
CN_CITIES = ["北京", "上海", "深圳", "杭州", "广州", "成都", "南京", "苏州", "武汉", "西安"]
CN_WORDS = ["星辰", "华信", "恒达", "云帆", "天成", "瑞丰", "博远", "智联", "宏图", "新创", "启明", "东方"]
CN_TRADES = ["科技", "贸易", "咨询", "软件", "物流", "电子", "医疗", "教育"]
CN_SUFFIXES = ["有限公司", "股份有限公司", "集团"]
EN_COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Tyrell", "Aperture"]
EN_TRADES = ["Systems", "Logistics", "Analytics", "Foods", "Robotics", "Health", "Media", "Capital"]
EN_SUFFIXES = ["Inc", "LLC", "GmbH", "Ltd", "Group", "Labs"]
EN_DOMAINS = ["example.com", "example.org", "example.net"]
CN_DOMAINS = ["example.cn", "example.com.cn"]

STATUSES = [Customer.Status.ACTIVE] * 5 + [Customer.Status.PROSPECT] * 2 + [Customer.Status.LEAD] * 2
STATUSES += [Customer.Status.INACTIVE]
INTERACTION_TYPES = [Interaction.Type.CALL] * 4 + [Interaction.Type.EMAIL] * 4 + [Interaction.Type.MEETING] * 2
INTERACTION_TYPES += [Interaction.Type.OTHER]
CN_NOTES = ["电话沟通需求", "发送报价单", "上门拜访", "确认合同条款", "产品演示", "售后回访"]
EN_NOTES = ["Discussed requirements", "Sent a quote", "On-site visit", "Reviewed contract terms", "Product demo"]
DEAL_KINDS = [
    "Annual licence",
    "Pilot project",
    "Support renewal",
    "Hardware order",
    "Consulting",
    "年度采购",
    "系统集成",
]
# Weighted so that the funnel narrows: most deals are early, some closed, a few lost.
STAGES = [Opportunity.Stage.LEAD] * 4 + [Opportunity.Stage.PROPOSAL] * 3 + [Opportunity.Stage.NEGOTIATION] * 2
STAGES += [Opportunity.Stage.CLOSED] * 2 + [Opportunity.Stage.LOST]

# A company's columns without a database default that it may not leave empty, and those its save computes
# (taken from an instance, _company_row): the rest are NULL or the database's default.
COMPANY_COLUMNS = (
    "id", "name", "name_key", "domain", "website", "phone", "phone_e164", "phone_national",
    "address", "industry", "size", "notes", "created_at", "updated_at",
)  # fmt: skip
# "company" is the column of the company's name (Customer.company_name); "company_id" the link.
CUSTOMER_COLUMNS = (
    "id", "name", "company", "email", "phone", "phone_e164", "phone_national", "status", "created_at", "updated_at",
    "company_id",
)  # fmt: skip
INTERACTION_COLUMNS = ("id", "customer_id", "interaction_type", "notes", "occurred_at", "created_at")
OPPORTUNITY_COLUMNS = (
    "id", "customer_id", "title", "value", "stage", "probability",
    "expected_close_date", "closed_at", "created_at", "updated_at", "company_id",
)  # fmt: skip
STAGE_CHANGE_COLUMNS = ("id", "opportunity_id", "from_stage", "to_stage", "changed_at")

# In the order they are written: a company before the customers that name it.
TABLES = (
    (Company, COMPANY_COLUMNS, "companies"),
    (Customer, CUSTOMER_COLUMNS, "customers"),
    (Interaction, INTERACTION_COLUMNS, "interactions"),
    (Opportunity, OPPORTUNITY_COLUMNS, "opportunities"),
    (StageChange, STAGE_CHANGE_COLUMNS, "stage_changes"),
)

YEAR_SECONDS = 365 * 86400

# The search indexes of the tables written, each with the migration that made it. On SQLite their
# triggers are dropped for the load and each index is rebuilt in one pass at the end: a trigger firing
# per row cost more than the insert it follows.
SEARCHES = (
    (company_search.SEARCH, ("companies", "0002_search_indexes")),
    (customer_search.SEARCH, ("customers", "0004_search_indexes")),
    (interaction_search.SEARCH, ("interactions", "0007_search_indexes")),
    (opportunity_search.SEARCH, ("opportunities", "0010_search_indexes")),
)


@dataclass
class Batch:
    companies: list = field(default_factory=list)
    customers: list = field(default_factory=list)
    interactions: list = field(default_factory=list)
    opportunities: list = field(default_factory=list)
    stage_changes: list = field(default_factory=list)

    def rows(self):
        return sum(len(getattr(self, attr)) for _, _, attr in TABLES)


@dataclass
class StartIds:
    """Where the generated rows start: each table's first id, and the companies already there.

    ``companies`` maps a name key (``companies.names.name_key``) to the ``(id, name)``
    of the oldest company with that key: a generated company name with one of these keys
    links to that company rather than making another.
    """

    company: int = 1
    customer: int = 1
    interaction: int = 1
    opportunity: int = 1
    stage_change: int = 1
    companies: dict = field(default_factory=dict)

    @classmethod
    def after_existing(cls, reserve=None):
        """The next free id of each table (ids are written explicitly), and the companies there.

        ``reserve`` (PostgreSQL; :func:`most_rows`): at most how many rows of each table will be written. Their
        ids are taken off each id sequence at once (it is moved past them, for good: a sequence is not rolled
        back), so that a row another connection creates meanwhile takes an id after them, not one of theirs.
        (A create already under way, its id taken but not committed, is not seen: as before, the run starts
        after the largest id committed.)
        """
        if reserve is None or connection.vendor != "postgresql":
            return cls(*(_max_id(model) + 1 for model, _, _ in TABLES), companies=_existing_companies())
        return cls(
            *(_reserve_ids(model, count) for (model, _, _), count in zip(TABLES, reserve, strict=True)),
            companies=_existing_companies(),
        )


def most_rows(customers, interactions_per, opportunities_per):
    """At most how many rows of each table (``TABLES``' order) ``generate`` writes for these arguments."""
    interactions = _interactions_range(interactions_per)[1] - 1
    opportunities = _opportunities_range(opportunities_per)[1] - 1
    # A company at most for each customer; two stage changes at most for each deal.
    return (customers, customers, customers * interactions, customers * opportunities, customers * opportunities * 2)


def _interactions_range(per):
    return max(0, per - 2), per + 3


def _opportunities_range(per):
    return max(0, per - 1), per + 2


def _max_id(model):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {connection.ops.quote_name(model._meta.db_table)}")
        return cursor.fetchone()[0] or 0


def _reserve_ids(model, count):
    """The first of ``count`` ids of ``model``'s table after the largest there, its id sequence moved past them
    (unless it is past them already) in the same statement (PostgreSQL)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT first, setval(seq, GREATEST(first + %s - 1, pg_sequence_last_value(seq))) FROM "
            f"(SELECT COALESCE(MAX(id), 0) + 1 AS first FROM {table}) AS taken, "
            "(SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) AS found",
            [count, model._meta.db_table],
        )
        return cursor.fetchone()[0]


def _existing_companies():
    companies = {}
    # Newest first, so that the oldest of a name key is the one kept, as Company.objects.named() finds it.
    for pk, name, key in Company.objects.order_by("-pk").values_list("pk", "name", "name_key").iterator():
        companies[key] = (pk, name)
    return companies


class _CompanyLinks:
    """The company each generated company name links to: one there already or made before, by name key, or a new
    one; each distinct name's key is computed once."""

    def __init__(self, start):
        self.next_id = start.company
        self.by_key = dict(start.companies)
        self.by_text = {}

    def link(self, text, created, new_rows):
        """``(id, name)`` of the company ``text`` names; a new company's row (created at ``created``) goes to
        ``new_rows``."""
        link = self.by_text.get(text)
        if link is None:
            key = name_key(text)
            link = self.by_key.get(key)
            if link is None:
                row = _company_row(self.next_id, text, created)
                new_rows.append(row)
                link = self.by_key[key] = (self.next_id, row[_COMPANY_NAME])
                self.next_id += 1
            self.by_text[text] = link
        return link


def _company_row(pk, name, created):
    """The row of a new company named ``name``, with the columns its save computes (``set_derived_fields``)."""
    company = Company(id=pk, name=name, created_at=created, updated_at=created)
    company.set_derived_fields()
    return tuple(getattr(company, column) for column in COMPANY_COLUMNS)


def _person(rng, cid):
    """(name, email local part, domain list) for customer ``cid``; about half Chinese."""
    if rng.random() < 0.5:
        surname, surname_py = rng.choice(CN_SURNAMES)
        given, given_py = rng.choice(CN_GIVEN)
        return surname + given, f"{given_py}.{surname_py}{cid}", CN_DOMAINS
    first, last = rng.choice(EN_FIRST), rng.choice(EN_LAST)
    return f"{first} {last}", f"{first.lower()}.{last.lower()}{cid}", EN_DOMAINS


def _company(rng):
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(CN_CITIES) + rng.choice(CN_WORDS) + rng.choice(CN_TRADES) + rng.choice(CN_SUFFIXES)
    if roll < 0.9:
        return f"{rng.choice(EN_COMPANIES)} {rng.choice(EN_TRADES)} {rng.choice(EN_SUFFIXES)}"
    return None


def generate(customers, *, seed=42, end=None, interactions_per=5, opportunities_per=2, start=None, batch_size=5000):
    """Yield :class:`Batch` es of rows for ``customers`` customers.

    The same ``seed``, ``end`` and ``start`` give the same rows. Timestamps fall in
    the year before ``end`` (a UTC datetime; default: today at midnight UTC).
    A customer is linked to the company its company name names, ignoring case and
    spacing (``companies.names.name_key``), as ``Customer.save()`` links it: one of
    ``start.companies``, or one made in the batch of the first customer that names it
    (created with that customer); its ``company`` text is that company's name. An
    opportunity is with its customer's company, as a new one saved is.
    Customer ``start.customer + customers // 2`` is :data:`UNIQUE_NAME`. A customer's
    ``phone_e164`` and ``phone_national`` are its number's E.164 form and national
    significant number as ``Customer.save()`` computes them
    (:func:`core.phones.stored_forms`, in ``CRM_PHONE_REGION``).
    """
    batches = _batches(
        customers,
        seed=seed,
        end=end,
        interactions_per=interactions_per,
        opportunities_per=opportunities_per,
        start=start,
        batch_size=batch_size,
    )
    return _with_phone_numbers(batches, settings.CRM_PHONE_REGION, helper=customers > batch_size)


_COMPANY_NAME = COMPANY_COLUMNS.index("name")
# Where a customer row holds its number, and the forms stored beside it (CUSTOMER_COLUMNS).
_PHONE = CUSTOMER_COLUMNS.index("phone")
_FORMS = (CUSTOMER_COLUMNS.index("phone_e164"), CUSTOMER_COLUMNS.index("phone_national"))


def _with_phone_numbers(batches, region, *, helper):
    """``batches`` with their customers' ``phone_e164`` and ``phone_national`` filled in.

    libphonenumber is pure Python: some 55 µs a number, as long as the rest of its
    customer's rows take to generate, which would cost a third of the load's speed. With
    ``helper`` (more than one batch), a process beside this one reads each batch's numbers
    while the batch before is written and the next one generated; the result is the same.
    """
    if not helper or "fork" not in multiprocessing.get_all_start_methods():
        for batch in batches:
            yield _numbered(batch, phones.stored_forms_each([row[_PHONE] for row in batch.customers], region))
        return
    # Forked: it starts at once with the modules already loaded, and does not run the caller's main module
    # again as a spawned process would. It only reads numbers, and leaves (os._exit) without closing
    # anything of this process's, such as the database connection it inherits.
    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    try:
        pending = None
        for batch in batches:
            numbers = pool.submit(phones.stored_forms_each, [row[_PHONE] for row in batch.customers], region)
            if pending is not None:
                yield _numbered(pending[0], pending[1].result())
            pending = (batch, numbers)
        if pending is not None:
            yield _numbered(pending[0], pending[1].result())
    finally:
        pool.shutdown(cancel_futures=True)


def _numbered(batch, numbers):
    rows = []
    for row, forms in zip(batch.customers, numbers, strict=True):
        row = list(row)
        for index, value in zip(_FORMS, forms, strict=True):
            row[index] = value
        rows.append(tuple(row))
    batch.customers = rows
    return batch


def _batches(customers, *, seed, end, interactions_per, opportunities_per, start, batch_size):
    rng = random.Random(seed)
    ids = start or StartIds()
    if end is None:
        end = datetime.combine(date.today(), time.min, tzinfo=UTC)
    year_start = end - timedelta(seconds=YEAR_SECONDS)
    unique_id = ids.customer + customers // 2
    inter_id, opp_id, change_id = ids.interaction, ids.opportunity, ids.stage_change
    links = _CompanyLinks(ids)
    batch = Batch()
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    interactions_range = _interactions_range(interactions_per)
    opportunities_range = _opportunities_range(opportunities_per)

    for cid in range(ids.customer, ids.customer + customers):
        name, local, domains = _person(rng, cid)
        company = _company(rng)
        if cid == unique_id:
            # Its email carries its id when appending, so that it cannot clash with an earlier one.
            local = "zyxwvut.unique" if ids.customer == 1 else f"zyxwvut.unique.{cid}"
            name, domains, company = UNIQUE_NAME, EN_DOMAINS, "Unique Holdings"
        email = f"{local}@{choice(domains)}" if rand() < 0.9 or cid == unique_id else None
        phone = (
            f"1{randrange(30, 90)}{randrange(10**8):08d}" if domains is CN_DOMAINS else f"+1-555-{randrange(10**7):07d}"
        )
        created = year_start + timedelta(seconds=randrange(YEAR_SECONDS))
        remaining = max(1, int((end - created).total_seconds()))
        company_pk, company = links.link(company, created, batch.companies) if company else (None, None)
        # Its phone_e164 and phone_national are filled in by _with_phone_numbers.
        batch.customers.append(
            (cid, name, company, email, phone, None, None, choice(STATUSES), created, created, company_pk)
        )

        notes = CN_NOTES if domains is CN_DOMAINS else EN_NOTES
        for _ in range(randrange(*interactions_range)):
            occurred = created + timedelta(seconds=randrange(remaining))
            note = choice(notes) if rand() < 0.85 else None
            # Logged the moment it happened, or up to a day later.
            logged = occurred + timedelta(seconds=randrange(86400)) if rand() < 0.3 else occurred
            batch.interactions.append((inter_id, cid, choice(INTERACTION_TYPES), note, occurred, min(logged, end)))
            inter_id += 1

        for k in range(randrange(*opportunities_range)):
            opened = created + timedelta(seconds=randrange(remaining))
            stage = choice(STAGES)
            expected = (opened + timedelta(days=randrange(14, 180))).date()
            updated = opened
            if stage not in Opportunity.OPEN_STAGES:
                updated = min(opened + timedelta(seconds=randrange(1, 120 * 86400)), end)
            elif stage != Opportunity.Stage.LEAD:
                updated = min(opened + timedelta(seconds=randrange(1, 60 * 86400)), end)
            # Moved from lead to its stage when last updated: what the stage rules make of it.
            probability, closed_at = stage_fields(stage=stage, moved=True, at=updated)
            value = Decimal(randrange(5_000, 50_000_000)) / 100
            title = f"{choice(DEAL_KINDS)} #{k + 1}"
            batch.opportunities.append(
                (opp_id, cid, title, value, stage, probability, expected, closed_at, opened, updated, company_pk)
            )
            # Every opportunity starts as a lead; later stages add the step that led there.
            batch.stage_changes.append((change_id, opp_id, None, Opportunity.Stage.LEAD, opened))
            change_id += 1
            if stage != Opportunity.Stage.LEAD:
                batch.stage_changes.append((change_id, opp_id, Opportunity.Stage.LEAD, stage, updated))
                change_id += 1
            opp_id += 1

        if len(batch.customers) >= batch_size:
            yield batch
            batch = Batch()
    if batch.customers:
        yield batch


class BulkWriter:
    """Writes :class:`Batch` es into the tables of the current database connection.

    With ``fresh=True`` (empty tables) on PostgreSQL, the tables' secondary
    indexes and foreign keys are dropped for the load and built again in
    ``finish()``, in the same transaction: one sorted pass per index and one
    join per foreign key instead of a GIN/B-tree insertion and a deferred check
    per row (what pg_restore does). Primary keys and unique indexes stay.
    """

    def __init__(self, fresh=False):
        self.vendor = connection.vendor
        self.deferred_ddl = []
        quote = connection.ops.quote_name
        self.sql = {}
        self.converters = {}
        for model, columns, _ in TABLES:
            self.converters[model] = [
                (index, _SQLITE_CONVERTERS[model._meta.get_field(column).get_internal_type()])
                for index, column in enumerate(columns)
                if model._meta.get_field(column).get_internal_type() in _SQLITE_CONVERTERS
            ]
            table = quote(model._meta.db_table)
            column_list = ", ".join(quote(column) for column in columns)
            if self.vendor == "postgresql":
                self.sql[model] = f"COPY {table} ({column_list}) FROM STDIN"
            else:
                placeholders = ", ".join(["%s"] * len(columns))
                self.sql[model] = f"INSERT INTO {table} ({column_list}) VALUES ({placeholders})"

        if self.vendor == "sqlite":
            with connection.cursor() as cursor:
                # A large page cache keeps the indexes' pages in memory while they grow.
                cursor.execute("PRAGMA cache_size = -262144")
                # The search indexes are rebuilt in one pass each at the end (finish()).
                for search, _migration in SEARCHES:
                    for trigger in search.sqlite_triggers:
                        cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        elif self.vendor == "postgresql" and fresh:
            self._drop_indexes_and_foreign_keys()

    def _drop_indexes_and_foreign_keys(self):
        tables = self.tables()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
                "FROM pg_constraint c WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY(%s) "
                "ORDER BY 1, 2",
                [tables],
            )
            foreign_keys = cursor.fetchall()
            cursor.execute(
                "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "WHERE i.indrelid::regclass::text = ANY(%s) AND NOT i.indisunique AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
                "ORDER BY 1",
                [tables],
            )
            indexes = cursor.fetchall()
            quote = connection.ops.quote_name
            for table, name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
                self.deferred_ddl.append(f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
            for name, definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
                self.deferred_ddl.insert(0, definition)  # indexes first: the foreign keys' checks use them

    @staticmethod
    def tables():
        return [model._meta.db_table for model, _, _ in TABLES]

    def write(self, batch):
        for model, _, attr in TABLES:
            rows = getattr(batch, attr)
            if not rows:
                continue
            if self.vendor == "postgresql":
                self._copy(model, rows)
            else:
                self._insert(model, rows)

    def _copy(self, model, rows):
        with connection.cursor() as cursor:
            # psycopg's COPY adapts datetimes, dates and decimals itself.
            with cursor.cursor.copy(self.sql[model]) as copy:
                for row in rows:
                    copy.write_row(row)

    def _insert(self, model, rows):
        converters = self.converters[model]
        if converters:
            rows = [list(row) for row in rows]
            for index, convert in converters:
                for row in rows:
                    if row[index] is not None:
                        row[index] = convert(row[index])
        with connection.cursor() as cursor:
            cursor.executemany(self.sql[model], rows)

    def finish(self):
        """Move the id sequences past the explicit ids, and refresh the planner's statistics."""
        models = [model for model, _, _ in TABLES]
        with connection.cursor() as cursor:
            if self.vendor == "postgresql":
                # Never back: ids after the rows written may be handed out already (StartIds.after_existing).
                for model in models:
                    table = connection.ops.quote_name(model._meta.db_table)
                    cursor.execute(
                        f"SELECT setval(seq, GREATEST((SELECT MAX(id) FROM {table}), pg_sequence_last_value(seq)))"
                        " FROM (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) AS found"
                        f" WHERE EXISTS (SELECT 1 FROM {table})",
                        [model._meta.db_table],
                    )
            else:
                for statement in connection.ops.sequence_reset_sql(no_style(), models):
                    cursor.execute(statement)
            if self.vendor == "postgresql":
                if self.deferred_ddl:
                    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
                for statement in self.deferred_ddl:
                    cursor.execute(statement)
                for model in models:
                    cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
            elif self.vendor == "sqlite":
                applied = MigrationRecorder(connection).applied_migrations()
                for search, migration in SEARCHES:
                    if migration in applied:
                        search.ensure_sqlite_index(cursor)
                cursor.execute("ANALYZE")


def _naive_utc_text(value):
    return value.replace(tzinfo=None).isoformat(" ")


# The text forms Django's SQLite backend stores (datetimes as naive UTC).
_SQLITE_CONVERTERS = {"DateTimeField": _naive_utc_text, "DateField": str, "DecimalField": str}
