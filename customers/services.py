"""Writes on customers that do more than save validated fields."""

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from simple_history.utils import bulk_update_with_history

from companies.names import name_key
from companies.services import company_for_name
from core import changesets, merges
from core.history import current_history_user
from core.rowlocks import locking

from . import parts
from .models import Customer


def delete_customer(customer):
    """Delete a customer with the records that belong to it; return the counts per kind.

    Each app whose records belong to a customer deletes its own first, in bulk
    (its deleter in ``customers.parts``, e.g. ``core.history.delete_with_history``:
    the "deleted" history records with one ``INSERT ... SELECT`` per table and the
    rows with one ``DELETE``), so the number of queries does not grow with the
    customer's history (a customer with 50,000 interactions takes as many as one
    with five). The customer itself goes through the ORM, which records its own
    history and cascades to anything left.
    """
    with transaction.atomic():
        counts = {name: delete(customer) for name, delete in parts.DELETERS.items()}
        customer.delete()
    return {"customers": 1, **counts}


def reassign_customers(customers, owner, *, dry_run=False):
    """Give ``customers`` to ``owner``, recording each change in the history; return the counts.

    Interactions and opportunities belong to their customer's owner, so they
    follow without being written; the count of open opportunities that moved is
    the customers' ``open_opportunity_count`` figure. Customers that already
    belong to ``owner`` are left alone. One changeset of kind "reassign" (undoable), in the
    answer's ``changeset``; a dry run writes nothing and gives the changeset it would make.
    """
    user = current_history_user()
    with changesets.recording(
        "reassign", user=user, label=f"Reassign to {owner}", source={"owner_id": owner.pk}, dry_run=dry_run
    ) as changeset:
        # Locked by primary key (the caller's queryset may carry joins and annotations), as an update
        # (``FOR NO KEY UPDATE``): the records being added to them meanwhile go on.
        moving = list(locking(Customer.objects.filter(pk__in=customers.values("pk")).exclude(owner=owner)))
        now = timezone.now()
        for customer in moving:
            customer.owner = owner
            customer.updated_at = now
        bulk_update_with_history(moving, Customer, ["owner", "updated_at"], batch_size=500, default_user=user)
        ids = [customer.pk for customer in moving]
        moved = Customer.objects.filter(pk__in=ids).with_summary("open_opportunity_count")
        open_opportunities = moved.aggregate(total=Sum("open_opportunity_count"))["total"] if ids else 0
    return {"customers": len(moving), "open_opportunities": open_opportunities or 0, "changeset": changeset}


def link_companies(customers):
    """Link ``customers`` (unsaved instances, for a bulk insert) to the companies their ``company_name`` names.

    What ``Customer.save()`` does one by one (``link_company``), for a batch: one
    lookup per distinct name, new companies created through the ORM (history and
    event), owned like the first customer that names them.
    """
    found = {}
    for customer in customers:
        if customer.company_id is not None:
            customer.company_name = customer.company.name
            continue
        name = " ".join((customer.company_name or "").split())
        if not name:
            customer.company_name = None
            continue
        key = name_key(name)
        if key not in found:
            found[key] = company_for_name(name, owner=customer.owner, created_by=customer.created_by)
        customer.company, customer.company_name = found[key], found[key].name
    return customers


# The fields a merge takes from one of the records (the survivor's, unless chosen or empty).
MERGE_FIELDS = ("name", "company", "email", "phone", "status", "owner", "external_id")


def merge_customers(survivor, others, *, choices=None, user, versions=None):
    """Merge ``others`` into ``survivor`` (records or ids); return the survivor, the merged ids and what moved.

    The survivor keeps its values except where ``choices`` (field -> id of the
    record to take it from; ``custom_fields.<key>`` for one custom field) says
    otherwise or its own is empty (then the first non-empty of ``others``); the
    tags of all are united, its custom values' gaps filled. The records of the
    apps built on customers move to it (their movers in ``customers.parts``), the
    others are deleted with their history and leave tombstones (``core.MergedRecord``:
    their ids answer with the survivor's), and the survivor's history names them.
    The whole merge is one transaction (``core.merges.merge_records``), written only through saves and
    deletes with history. ``core.merges`` holds the rules and refusals
    (``MergeRefused``, ``PermissionDenied``); ``versions`` (id -> ``updated_at``
    seen) refuses records changed since the user looked.
    """
    return merges.merge_records(
        Customer,
        MERGE_FIELDS,
        parts.MOVERS,
        survivor,
        others,
        choices=choices,
        user=user,
        versions=versions,
        parents=("company",),
    )
