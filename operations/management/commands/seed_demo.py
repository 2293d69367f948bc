import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import F, OuterRef, Subquery
from tqdm import tqdm

from companies.models import Company
from customers.models import Customer
from operations.demo import demo_reps
from operations.demo_tasks import create_demo_tasks, demo_assignee
from operations.seeding import UNIQUE_NAME, BulkWriter, StartIds, generate, most_rows

# Customers that get demo tasks (a round of overdue, today's and upcoming ones each, at most).
DEMO_TASK_CUSTOMERS = 200
# The advisory lock that makes runs take turns on PostgreSQL ("seeddemo" as a number).
SEED_LOCK = 8315163768864992623


def _positive(value):
    number = int(value)
    if number < 1:
        raise ValueError
    return number


def _non_negative(value):
    number = int(value)
    if number < 0:
        raise ValueError
    return number


def _date(value):
    return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)


def _take_turn():
    """Hold, until the transaction ends, the lock that seed runs take turns by (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SEED_LOCK])


def _refuse_unless_appending(has_customers, options):
    if has_customers and not options["append"]:
        raise CommandError("The database already has customers. Use --append to add more, or seed an empty database.")


class Command(BaseCommand):
    help = (
        "Fill the database with realistic demo data at any size: customers with Chinese and English "
        "names, linked to their companies (each company name made once, or linked to the company "
        "of that name already there), about 5 interactions and 2 opportunities each (with their "
        "stage changes; a deal is with its customer's company), spread over the year before --end. "
        "The same --customers/--seed/--end give the same data. Rows are written in bulk (COPY on PostgreSQL), e.g. "
        "'manage.py seed_demo --customers 100000'. Refuses a database that already has customers "
        "unless --append is given."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--customers", type=_positive, default=1000, help="How many customers to create (default: 1000)."
        )
        parser.add_argument("--seed", type=int, default=42, help="Random seed; same seed, same data (default: 42).")
        parser.add_argument(
            "--end",
            type=_date,
            default=None,
            metavar="YYYY-MM-DD",
            help="Latest timestamp of the data (default: today, midnight UTC).",
        )
        parser.add_argument(
            "--interactions-per",
            type=_non_negative,
            default=5,
            help="Average interactions per customer (default: 5).",
        )
        parser.add_argument(
            "--opportunities-per",
            type=_non_negative,
            default=2,
            help="Average opportunities per customer (default: 2).",
        )
        parser.add_argument(
            "--batch-size", type=_positive, default=5000, help="Customers written per batch (default: 5000)."
        )
        parser.add_argument(
            "--append", action="store_true", help="Add to a database that already has customers (new ids)."
        )
        parser.add_argument("--no-progress", action="store_true", help="Do not show the progress bar.")

    def handle(self, *args, **options):
        try:
            has_customers = Customer.objects.exists()
        except Exception as exc:  # a missing table is the usual cause
            raise CommandError(f"Cannot read the customers table ({exc}). Run 'manage.py migrate' first.") from exc
        _refuse_unless_appending(has_customers, options)
        total = options["customers"]
        rows = companies = 0
        began = time.perf_counter()
        with transaction.atomic():
            # One run at a time: the rows are written with the ids after the largest there, and a company name
            # links to the company of that name there. A run begun meanwhile waits here for this one to commit,
            # then reads what it wrote (rather than writing the same ids and companies, and failing at its ids);
            # SQLite's IMMEDIATE transactions queue already.
            _take_turn()
            has_customers = Customer.objects.exists()
            _refuse_unless_appending(has_customers, options)
            progress = tqdm(
                total=total, unit=" customers", disable=options["no_progress"] or None, file=self.stderr._out
            )
            # The companies already there (of an import, or an earlier seed) are read in the
            # transaction: a name of theirs links to them rather than making another. On PostgreSQL the ids the
            # run may write are taken off the id sequences now: a customer (or deal...) created meanwhile takes
            # one after them, rather than one the run writes (an IntegrityError for one or the other).
            start = StartIds.after_existing(
                reserve=most_rows(total, options["interactions_per"], options["opportunities_per"])
            )
            # In the transaction: what the writer sets aside (indexes, foreign keys,
            # search triggers) comes back with the rollback if the load fails.
            writer = BulkWriter(fresh=not has_customers)
            for batch in generate(
                total,
                seed=options["seed"],
                end=options["end"],
                interactions_per=options["interactions_per"],
                opportunities_per=options["opportunities_per"],
                start=start,
                batch_size=options["batch_size"],
            ):
                writer.write(batch)
                rows += batch.rows()
                companies += len(batch.companies)
                progress.update(len(batch.customers))
            writer.finish()
        progress.close()
        if connection.vendor == "postgresql":
            # Outside the transaction: sets the visibility map, so that counts and
            # index-only scans need not visit the fresh heap pages.
            with connection.cursor() as cursor:
                for table in BulkWriter.tables():
                    cursor.execute(f"VACUUM (ANALYZE) {connection.ops.quote_name(table)}")
        elapsed = time.perf_counter() - began
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {total} customers and {companies} new companies ({rows} rows in all) into {connection.vendor} "
                f"in {elapsed:.1f} s: {rows / elapsed:,.0f} rows/s."
            )
        )
        self.stdout.write(
            f"Customer ids {start.customer}..{start.customer + total - 1}; "
            f"'{UNIQUE_NAME}' is customer {start.customer + total // 2}."
        )
        self._owners(start, total, companies)
        self._demo_tasks(start, total, options["seed"])

    def _owners(self, start, total, companies):
        """The new customers go to the demo reps in turn (``init_demo`` creates them), so that a rep has a book;
        a new company is owned like the first customer that names it, as ``Customer.link_company`` makes it."""
        reps = demo_reps()
        if not reps:
            return
        new = Customer.objects.filter(pk__gte=start.customer, pk__lt=start.customer + total)
        for index, rep in enumerate(reps):
            new.annotate(turn=F("pk") % len(reps)).filter(turn=index).update(owner=rep)
        first_owner = Customer.objects.filter(company=OuterRef("pk")).order_by("pk").values("owner")[:1]
        Company.objects.filter(pk__gte=start.company, pk__lt=start.company + companies).update(
            owner=Subquery(first_owner)
        )
        self.stdout.write(
            f"Customers and their new companies owned by the demo reps: {', '.join(rep.username for rep in reps)}."
        )

    def _demo_tasks(self, start, total, seed):
        """Tasks around today (overdue, today, upcoming) on some of the new customers: for each demo rep on
        their own (``_owners``), else for a manager or rep."""
        customers = Customer.objects.filter(pk__gte=start.customer, pk__lt=start.customer + total).order_by("pk")
        reps = demo_reps()
        if reps:
            plan = [(rep, customers.filter(owner=rep)[: DEMO_TASK_CUSTOMERS // len(reps)]) for rep in reps]
        else:
            assignee = demo_assignee()
            if assignee is None:
                self.stdout.write("No manager or rep yet: no demo tasks (create a user and seed again with --append).")
                return
            plan = [(assignee, customers[:DEMO_TASK_CUSTOMERS])]
        counts = [(user, create_demo_tasks(rows, user, seed=seed)) for user, rows in plan]
        self.stdout.write(
            "Added demo tasks around today: "
            + ", ".join(f"{count} for {user.get_username()}" for user, count in counts)
            + "."
        )
