"""Moving the data of the original Flask CRM (its SQLite file) into this database.

Ids, timestamps, relations and text are kept. A row that cannot be brought over
is skipped with the reason, and so are the rows that depend on it; a row whose
id is already here is left alone, so a second run changes nothing.
"""

import datetime
import math
import sqlite3
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import connection

from companies.models import Company
from companies.names import name_key
from core.history import record_creation
from core.rowlocks import lock_keys
from customers.models import Customer
from customers.services import link_companies
from interactions.models import Interaction
from operations.sqlite_files import MAX_VALUE_BYTES, integrity_problem, open_untrusted
from opportunities.models import Opportunity, StageChange
from opportunities.services import opportunity_set_stage

HISTORY_REASON = "Imported from the original CRM"


# Kind -> (table names the original used or might have used, columns it needs).
TABLES = {
    "customers": (("customers", "customer"), {"id", "name"}),
    "interactions": (("interactions", "interaction"), {"id", "customer_id", "interaction_type"}),
    "opportunities": (("opportunities", "opportunity"), {"id", "customer_id", "title"}),
}
MODELS = {"customers": Customer, "interactions": Interaction, "opportunities": Opportunity}
BATCH = 1000
CENT = Decimal("0.01")


class LegacyError(Exception):
    """The file cannot be used as a legacy database."""


class Skip(Exception):
    """This row is not imported; the message says why."""


class LegacyDatabase:
    """Read-only access to the original CRM's SQLite file, whatever its tables are called."""

    def __init__(self, path):
        path = Path(path)
        if not path.is_file():
            raise LegacyError(f"{path} does not exist or is not a file.")
        self.path = path
        try:
            self.connection = open_untrusted(path)
        except sqlite3.Error as exc:
            raise LegacyError(f"{path} cannot be opened as an SQLite database ({exc}).") from exc
        # Text that is not valid UTF-8 is kept with replacement characters rather than failing the import.
        self.connection.text_factory = lambda data: data.decode("utf-8", errors="replace")
        try:
            problem = integrity_problem(self.connection)
            names = [row[0] for row in self.connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        except sqlite3.DatabaseError as exc:
            self.connection.close()
            raise LegacyError(f"{path} is not an SQLite database, or is damaged ({exc}).") from exc
        if problem:
            self.connection.close()
            raise LegacyError(f"{path} is damaged (SQLite integrity check: {problem}).")
        by_lower = {name.lower(): name for name in names}
        if "django_migrations" in by_lower:
            # The original CRM was a Flask application: this is a backup or a database of this one.
            self.connection.close()
            raise LegacyError(
                f"{path} is a database of this application (a backup?), not the original CRM's: bring a backup "
                "back with 'manage.py restore'."
            )
        self.tables, self.columns = {}, {}
        for kind, (candidates, required) in TABLES.items():
            table = next((by_lower[c] for c in candidates if c in by_lower), None)
            if table is None:
                continue
            columns = {row[1].lower() for row in self.connection.execute(f'PRAGMA table_info("{table}")')}
            missing = required - columns
            if missing:
                raise LegacyError(f"Table {table} lacks the column(s) {', '.join(sorted(missing))}.")
            self.tables[kind], self.columns[kind] = table, columns
        if "customers" not in self.tables:
            found = ", ".join(names) or "none"
            raise LegacyError(f"{path} has no customers table (tables found: {found}).")

    def close(self):
        self.connection.close()

    def count(self, kind):
        with self._reading():
            return self.connection.execute(f'SELECT COUNT(*) FROM "{self.tables[kind]}"').fetchone()[0]

    def duplicate_ids(self, kind):
        """Ids that more than one row of the table carries (a table without a primary key allows it)."""
        table = self.tables[kind]
        with self._reading():
            rows = self.connection.execute(f'SELECT "id" FROM "{table}" GROUP BY "id" HAVING COUNT(*) > 1')
            return {row[0] for row in rows}

    def distinct(self, kind, column):
        """The values of ``column`` in the ``kind`` table, each once (none when the table or column is absent)."""
        if kind not in self.tables or column not in self.columns[kind]:
            return set()
        with self._reading():
            rows = self.connection.execute(f'SELECT DISTINCT "{column}" FROM "{self.tables[kind]}"')
            return {row[0] for row in rows}

    def batches(self, kind, columns):
        """Rows as dicts of ``columns`` (absent columns are None), by id, ``BATCH`` at a time."""
        present = [c for c in columns if c in self.columns[kind]]
        select = ", ".join(f'"{c}"' for c in present)
        with self._reading():
            cursor = self.connection.execute(f'SELECT {select} FROM "{self.tables[kind]}" ORDER BY "id"')
            while rows := cursor.fetchmany(BATCH):
                yield [dict.fromkeys(columns) | dict(zip(present, row, strict=True)) for row in rows]

    @contextmanager
    def _reading(self):
        try:
            yield
        except sqlite3.Error as exc:
            # A damaged page, or a value larger than MAX_VALUE_BYTES: the whole import is rolled back.
            raise LegacyError(
                f"{self.path} cannot be read ({exc}); values larger than {MAX_VALUE_BYTES} bytes are refused."
            ) from exc


def legacy_time(value, name):
    """A naive UTC timestamp of the original (``2024-04-05 02:33:27.000000``) as an aware datetime."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(text(value)))
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=datetime.UTC)
        return parsed.astimezone(datetime.UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that moves it past year 1 or 9999
        raise Skip(f"{name} {value!r} is not a date and time") from None


def text(value):
    """Optional text: None when empty; NUL characters dropped (PostgreSQL cannot store them).

    A BLOB (SQLite keeps what it was given) is read as UTF-8 like the file's text, not as Python's ``b'...'``.
    """
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    value = str(value).replace("\x00", "").strip()
    return value or None


def legacy_id(value, name="id"):
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise Skip(f"{name} {value!r} is not a positive integer")


def check_fields(instance, exclude=()):
    """The model's own field rules (lengths, choices, email, ranges)."""
    try:
        instance.clean_fields(exclude=exclude)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        value = getattr(instance, field, None)
        raise Skip(f"invalid {field} {value!r}: {' '.join(messages)}") from None


@contextmanager
def explicit_timestamps(*models):
    """Let bulk_create keep given created_at/updated_at instead of stamping the current time."""
    fields = [
        f
        for m in models
        for f in m._meta.concrete_fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    saved = [(f, f.auto_now, f.auto_now_add) for f in fields]
    for f in fields:
        f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in saved:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


class TableReport:
    def __init__(self, kind, table):
        self.kind, self.table = kind, table
        self.read = self.imported = self.present = 0
        self.skipped = []  # (legacy id, reason)


class LegacyImport:
    """Import customers, then interactions and opportunities, from a :class:`LegacyDatabase`."""

    def __init__(self, legacy, progress=None):
        self.legacy = legacy
        self.progress = progress  # callable(kind, total) -> context manager with update(n), or None
        self.now = datetime.datetime.now(datetime.UTC)
        self.skipped_customers = {}  # legacy id -> reason
        self.emails_seen = {}  # lower-cased email -> id of the customer imported with it
        self.reports = []

    def run(self):
        self._hold_parents()
        with explicit_timestamps(Customer, Interaction, Opportunity):
            self._table(
                "customers",
                ["id", "name", "company", "email", "phone", "status", "created_at", "updated_at"],
                self._customers,
            )
            if "interactions" in self.legacy.tables:
                self._table(
                    "interactions", ["id", "customer_id", "interaction_type", "notes", "created_at"], self._interactions
                )
            if "opportunities" in self.legacy.tables:
                self._table(
                    "opportunities",
                    ["id", "customer_id", "title", "value", "stage", "probability", "created_at", "updated_at"],
                    self._opportunities,
                )
        self._reset_sequences()
        return self.reports

    def _hold_parents(self):
        """Hold the records here that the file's rows may point theirs at, before any row is written (the import is
        one transaction), with the lock their foreign keys' check takes at COMMIT (``rowlocks.lock_keys``): the
        companies its customers name, then the customers its interactions and opportunities name, in the order a
        company's delete locks them (the company, then its people). A delete under way is waited for, and the rows,
        read after, find its record gone, as a run after the delete would: the rows of a customer gone are orphans
        (or, the file's customers table having it, come in with it anew), a company gone is made anew by its name.
        A delete that comes after waits for the import. Held only by that check, a record deleted meanwhile failed
        the whole import at its COMMIT."""
        names = {text(value) for value in self.legacy.distinct("customers", "company")} - {None}
        keys = {name_key(name) for name in names} - {""}
        customer_ids = {
            value
            for kind in ("interactions", "opportunities")
            for value in self.legacy.distinct(kind, "customer_id")
            if isinstance(value, int)
        }
        if keys:
            lock_keys(Company.objects.filter(name_key__in=keys))
        if customer_ids:
            lock_keys(Customer.objects.filter(pk__in=customer_ids))

    def _table(self, kind, columns, import_batch):
        report = TableReport(kind, self.legacy.tables[kind])
        self.reports.append(report)
        total = self.legacy.count(kind)
        duplicated = self.legacy.duplicate_ids(kind)
        with self.progress(kind, total) as bar:
            for rows in self.legacy.batches(kind, columns):
                report.read += len(rows)
                import_batch(self._drop_duplicated(rows, duplicated, report), report)
                bar.update(len(rows))

    def _drop_duplicated(self, rows, duplicated, report):
        """Skip every row whose id other rows of the file carry too: which one the others meant is unknown."""
        if not duplicated:
            return rows
        kept = []
        for row in rows:
            if row["id"] in duplicated:
                reason = f"id {row['id']} is used by more than one row of the file"
                report.skipped.append((row["id"], reason))
                if report.kind == "customers":
                    self.skipped_customers[row["id"]] = reason
            else:
                kept.append(row)
        return kept

    def _split_present(self, model, rows, report, same):
        """Drop rows whose id is here already: unchanged when ``same(row, existing)``, a conflict otherwise."""
        ids = [row["id"] for row in rows if isinstance(row["id"], int)]
        existing = model.objects.in_bulk(ids)
        fresh = []
        for row in rows:
            here = existing.get(row["id"])
            if here is None:
                fresh.append(row)
            elif same(row, here):
                report.present += 1
            else:
                reason = f"id {row['id']} is already used by a different {model._meta.verbose_name}"
                report.skipped.append((row["id"], reason))
                if model is Customer:
                    self.skipped_customers[row["id"]] = reason
        return fresh

    def _customers(self, rows, report):
        rows = self._split_present(
            Customer,
            rows,
            report,
            lambda row, here: (
                text(row["name"]) == here.name and (text(row["email"]) or "").lower() == (here.email or "").lower()
            ),
        )
        # Found as the unique index compares emails (lowered by the database, ``with_email_in``), then keyed as
        # the rows are.
        emails = {text(r["email"]) for r in rows} - {None}
        taken = {email.lower(): pk for email, pk in Customer.objects.with_email_in(emails).values_list("email", "id")}
        seen = self.emails_seen
        batch = []
        for row in rows:
            try:
                customer = self._customer(row)
                key = (customer.email or "").lower()
                if key in seen:
                    raise Skip(f"duplicate email {customer.email!r} (also customer {seen[key]})")
                if key in taken:
                    raise Skip(f"email {customer.email!r} belongs to existing customer {taken[key]}")
            except Skip as skip:
                self.skipped_customers[row["id"]] = str(skip)
                report.skipped.append((row["id"], str(skip)))
                continue
            if key:
                seen[key] = customer.pk
            batch.append(customer)
        link_companies(batch)
        Customer.objects.bulk_create(batch)
        record_creation(Customer, batch, HISTORY_REASON, batch_size=2000)
        report.imported += len(batch)

    def _customer(self, row):
        status = (text(row["status"]) or Customer.Status.ACTIVE).lower()
        created = legacy_time(row["created_at"], "created_at") or self.now
        customer = Customer(
            id=legacy_id(row["id"]),
            name=text(row["name"]) or "",
            company_name=text(row["company"]),
            email=text(row["email"]),
            phone=text(row["phone"]),
            status=status,
            created_at=created,
            updated_at=legacy_time(row["updated_at"], "updated_at") or created,
        )
        customer.set_derived_fields()
        check_fields(customer)
        return customer

    def _known_customers(self, rows, report):
        """Rows whose customer is here; the others are skipped as orphans."""
        ids = {row["customer_id"] for row in rows if isinstance(row["customer_id"], int)}
        known = set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True))
        kept = []
        for row in rows:
            customer_id = row["customer_id"]
            if customer_id in self.skipped_customers:
                report.skipped.append((row["id"], f"its customer {customer_id} was skipped"))
            elif customer_id in known:
                kept.append(row)
            else:
                report.skipped.append((row["id"], f"orphan: customer {customer_id!r} does not exist"))
        return kept

    def _import_rows(self, model, rows, report, build, same):
        rows = self._split_present(
            model, rows, report, lambda row, here: self._same_customer(row, here) and same(row, here)
        )
        batch = []
        for row in self._known_customers(rows, report):
            try:
                batch.append(build(row))
            except Skip as skip:
                report.skipped.append((row["id"], str(skip)))
        model.objects.bulk_create(batch)
        record_creation(model, batch, HISTORY_REASON, batch_size=2000)
        report.imported += len(batch)
        return batch

    def _same_customer(self, row, here):
        """Whether the record here is of the row's customer: the same id, and that customer not one skipped as
        different from the one here (then the ids are the same, the customers are not)."""
        return row["customer_id"] == here.customer_id and row["customer_id"] not in self.skipped_customers

    def _interactions(self, rows, report):
        self._import_rows(
            Interaction,
            rows,
            report,
            self._interaction,
            lambda row, here: (
                (text(row["interaction_type"]) or "").lower() == here.interaction_type
                and text(row["notes"]) == here.notes
            ),
        )

    def _interaction(self, row):
        created = legacy_time(row["created_at"], "created_at") or self.now
        interaction = Interaction(
            id=legacy_id(row["id"]),
            customer_id=row["customer_id"],
            interaction_type=(text(row["interaction_type"]) or "").lower(),
            notes=text(row["notes"]),
            occurred_at=created,
            created_at=created,
        )
        check_fields(interaction, exclude=["customer"])
        return interaction

    def _opportunities(self, rows, report):
        created = self._import_rows(
            Opportunity, rows, report, self._opportunity, lambda row, here: (text(row["title"]) or "") == here.title
        )
        # The original kept no history: record each opportunity's creation at its current stage.
        StageChange.objects.bulk_create(
            StageChange(opportunity_id=o.pk, from_stage=None, to_stage=o.stage, changed_at=o.created_at)
            for o in created
        )

    def _opportunity(self, row):
        stage = (text(row["stage"]) or Opportunity.Stage.LEAD).lower()
        created = legacy_time(row["created_at"], "created_at") or self.now
        updated = legacy_time(row["updated_at"], "updated_at") or created
        opportunity = Opportunity(
            id=legacy_id(row["id"]),
            customer_id=row["customer_id"],
            title=text(row["title"]) or "",
            value=self._money(row["value"]),
            stage=stage,
            probability=self._probability(row["probability"]),
            created_at=created,
            updated_at=updated,
        )
        check_fields(opportunity, exclude=["customer"])
        # The original did not record when an opportunity closed; its last update is the best evidence.
        opportunity_set_stage(opportunity=opportunity, stage=stage, probability=opportunity.probability, at=updated)
        return opportunity

    @staticmethod
    def _money(value):
        if value is None or value == "":
            return Decimal("0.00")
        try:
            if isinstance(value, float) and not math.isfinite(value):
                raise InvalidOperation
            return Decimal(str(value)).quantize(CENT)
        except (InvalidOperation, ValueError):
            raise Skip(f"value {value!r} is not a number") from None

    @staticmethod
    def _probability(value):
        if value is None or value == "":
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise Skip(f"probability {value!r} is not a whole number")
        return value

    @staticmethod
    def _reset_sequences():
        # Rows were inserted with explicit ids: move PostgreSQL's id sequences past them.
        statements = connection.ops.sequence_reset_sql(no_style(), [Customer, Interaction, Opportunity, StageChange])
        if statements:
            with connection.cursor() as cursor:
                for sql in statements:
                    cursor.execute(sql)
