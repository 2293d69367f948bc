"""Create the companies from the customers' company texts and link every customer to its company.

Texts that differ only in letter case or spacing (``"ABC科技"``, ``" abc科技 "``,
``"ABC  科技"``) are one company, named by its most common spelling (the earliest
customer's on a tie); a company whose name is already taken (ignoring case and
spacing) is reused. The company is owned by its people's owner when they all have
the same one, otherwise by no one (managers see it, and every rep of its people).
Each customer's text becomes its company's name, and the change is recorded in
its history.

Backwards, every linked customer's text is its company's current name; the
companies themselves stay (they are the companies app's records).
"""

from django.db import migrations
from django.utils import timezone

from companies.names import group_names

CHUNK = 2000
REASON = "Linked to its company"


def _history_row(HistoricalCustomer, customer, now):
    values = {
        field.attname: getattr(customer, field.attname)
        for field in HistoricalCustomer._meta.concrete_fields
        if not field.name.startswith("history_") and hasattr(customer, field.attname)
    }
    return HistoricalCustomer(
        **values, history_date=now, history_type="~", history_user_id=None, history_change_reason=REASON
    )


def link(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    HistoricalCustomer = apps.get_model("customers", "HistoricalCustomer")
    Company = apps.get_model("companies", "Company")
    HistoricalCompany = apps.get_model("companies", "HistoricalCompany")
    db = schema_editor.connection.alias
    rows = (
        Customer.objects.using(db)
        .filter(company_id__isnull=True)
        .exclude(company_name__isnull=True)
        .order_by("pk")
        .values_list("pk", "company_name", "owner_id")
    )
    groups = group_names(rows.iterator(chunk_size=CHUNK))
    # Blank texts are no company.
    Customer.objects.using(db).filter(company_id__isnull=True, company_name__regex=r"^\s*$").update(company_name=None)
    if not groups:
        return

    now = timezone.now()
    existing = {}
    for company in Company.objects.using(db).filter(name_key__in=list(groups)).order_by("-pk"):
        existing[company.name_key] = company  # the oldest wins
    created = [
        Company(name=name, name_key=key, owner_id=owner_id, created_at=now, updated_at=now)
        for key, (name, owner_id, _pks) in groups.items()
        if key not in existing
    ]
    Company.objects.using(db).bulk_create(created, batch_size=500)
    if any(company.pk is None for company in created):
        # Backends that do not return the new keys: read them back.
        fresh = Company.objects.using(db).filter(name_key__in=[company.name_key for company in created])
        by_key = {company.name_key: company for company in fresh.order_by("-pk")}
        created = [by_key[company.name_key] for company in created]
    HistoricalCompany.objects.using(db).bulk_create(
        [
            HistoricalCompany(
                id=company.pk,
                name=company.name,
                domain=None,
                owner_id=company.owner_id,
                created_at=company.created_at,
                history_date=now,
                history_type="+",
                history_change_reason="Created from its people's company text",
            )
            for company in created
        ],
        batch_size=500,
    )
    companies = {**existing, **{company.name_key: company for company in created}}

    for key, (_name, _owner_id, pks) in groups.items():
        company = companies[key]
        for start in range(0, len(pks), CHUNK):
            chunk = pks[start : start + CHUNK]
            Customer.objects.using(db).filter(pk__in=chunk).update(company_id=company.pk, company_name=company.name)
            HistoricalCustomer.objects.using(db).bulk_create(
                [_history_row(HistoricalCustomer, c, now) for c in Customer.objects.using(db).filter(pk__in=chunk)],
                batch_size=500,
            )


def unlink(apps, schema_editor):
    Customer = apps.get_model("customers", "Customer")
    Company = apps.get_model("companies", "Company")
    db = schema_editor.connection.alias
    names = dict(Company.objects.using(db).values_list("pk", "name"))
    linked = Customer.objects.using(db).filter(company_id__isnull=False).values_list("company_id", flat=True)
    for company_id in set(linked.iterator(chunk_size=CHUNK)):
        Customer.objects.using(db).filter(company_id=company_id).update(
            company_name=names.get(company_id), company_id=None
        )


class Migration(migrations.Migration):
    dependencies = [
        ("companies", "0001_initial"),
        ("customers", "0007_customer_company"),
    ]

    operations = [migrations.RunPython(link, unlink, elidable=False)]
