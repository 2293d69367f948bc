"""What customers add to their company (``companies.parts``), registered by ``CustomersConfig.ready()``.

A company's people count, its timeline (its people's, merged), what deleting it
does to its people (they stay, without a company), and who sees it: the reps of
its people as well as its owner.
"""

from django.db.models import Count, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from companies import parts
from companies.models import Company
from core import access, changesets
from core.history import current_history_user, update_with_history
from core.rowlocks import lock_rows, locking

from .models import Customer
from .timeline import timeline_entries, timeline_of_customers


def of_people_seen_by(viewer, rows, customer=None):
    """``rows`` narrowed to the people ``viewer`` sees: all of them for None.

    ``rows`` are customers, or records whose lookup ``customer`` leads to one (a deal, an interaction).
    What a company shows of its people (its figures, its timeline) is of these: a rep who sees the
    company (its owner, or the owner of one of its people) sees their own people there, not another rep's.
    """
    if viewer is None:
        return rows
    if customer is None:
        return access.scope(rows, viewer)
    return rows.filter(**{f"{customer}__in": access.scope(Customer.objects.all(), viewer).values("pk")})


def people_count(viewer=None):
    people = of_people_seen_by(viewer, Customer.objects.filter(company=OuterRef("pk")))
    counts = people.order_by().values("company").annotate(n=Count("id"))
    return Coalesce(Subquery(counts.values("n")), Value(0))


def company_timeline(company_id, user):
    people = of_people_seen_by(user, Customer.objects.filter(company_id=company_id))
    return timeline_of_customers(people.values("pk"))


def company_timeline_entries(rows):
    rows = list(rows)
    return [
        {**entry, "customer_id": row["timeline_customer_id"]}
        for row, entry in zip(rows, timeline_entries(rows), strict=True)
    ]


def unlink_people(company):
    """Leave the company's people without a company, recording it in their history; return how many."""
    # Changed, not deleted (``FOR NO KEY UPDATE``): the records being added to them meanwhile go on.
    people = list(locking(Customer.objects.filter(company=company)))
    now = timezone.now()
    for customer in people:
        customer.company, customer.company_name, customer.updated_at = None, None, now
    bulk_update_with_history(
        people,
        Customer,
        ["company", "company_name", "updated_at"],
        batch_size=500,
        default_user=current_history_user(),
    )
    return len(people)


def follow_rename(company):
    """The company text of the company's people is its name (search matches it): a change of each of them, in
    their history and events, as the API shows it as their ``company``.

    A rep's changeset (a batch, an import, a merge, an undo) lists the people of their book: the others' change too,
    but they are not the rep's to be shown (their names) nor to hold up the undo (``changesets.conflicts``), which
    renames them back with the company (``changesets.derived``).
    """
    people = Customer.objects.filter(company=company).exclude(company_name=company.name)
    recorded = changesets.active()
    user = recorded.user if recorded is not None else None
    if user is None or access.sees_everything(user):
        update_with_history(people, company_name=company.name)
        return
    # All of them locked first, in one order, as a single update would lock them.
    lock_rows(people)
    update_with_history(access.scope(people, user), company_name=company.name)
    with changesets.unrecorded():
        update_with_history(people, company_name=company.name)


def move_people(from_ids, survivor):
    """The people of the companies ``from_ids`` join ``survivor`` (and carry its name as their company text)."""
    return update_with_history(
        Customer.objects.filter(company_id__in=from_ids), company=survivor, company_name=survivor.name
    )


def with_company_text(values):
    """The values an undo puts back on people in bulk, their company text derived as their save derives it
    (``Customer.link_company``: the name of the company they are put back at, as it is now)."""
    if values.get("company_id") is None:
        return values
    customer = Customer(company_id=values["company_id"])
    customer.link_company()
    return {**values, "company_name": customer.company_name}


def register():
    access.register_viewer_path(Company, "customers__owner")
    parts.add_figure("people_count", people_count)
    parts.set_timeline(parts.Timeline(rows=company_timeline, entries=company_timeline_entries))
    parts.add_unlinker("people", unlink_people)
    parts.add_mover("people", move_people)
    parts.on_rename(follow_rename)
    changesets.derived(Customer, "company_name")
    changesets.restore_in_bulk(Customer, "company_id", "company_name", deriving=with_company_text)
