"""``external_id`` in admin imports and exports of customers, companies, interactions and opportunities.

A row carries another system's id for its record; a row without an ``id`` whose
``external_id`` names a record (in the importing user's book) updates it, as a
batch upsert of the API does, so a file exported from another system can be
imported again and again without duplicates.
"""

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from companies.models import Company
from customers.models import Customer
from interactions.models import Interaction
from opportunities.models import Opportunity
from tests.core.admin.helpers import export_data, import_rows, read_csv, upload
from tests.factories import CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db

# model, admin URL, columns of a new row (customer cell filled in by the test), the text column.
KINDS = {
    "customer": (Customer, "/admin/customers/customer/", {"name": "Imported"}, "name"),
    "company": (Company, "/admin/companies/company/", {"name": "Imported"}, "name"),
    "interaction": (
        Interaction,
        "/admin/interactions/interaction/",
        {"customer": None, "interaction_type": "call", "notes": "Imported"},
        "notes",
    ),
    "opportunity": (
        Opportunity,
        "/admin/opportunities/opportunity/",
        {"customer": None, "title": "Imported", "value": "10", "stage": "lead"},
        "title",
    ),
}


def rows_of(values, customer):
    row = {name: (customer.pk if name == "customer" else value) for name, value in values.items()}
    return [list(row), list(row.values())]


@pytest.mark.parametrize("kind", KINDS)
def test_import_sets_external_id_and_export_has_it(admin_client, kind):
    model, url, values, text = KINDS[kind]
    customer = CustomerFactory()
    header, row = rows_of({**values, "external_id": "crm2-7"}, customer)

    import_rows(admin_client, url, [header, row])

    record = model.objects.get(external_id="crm2-7")
    assert getattr(record, text) == "Imported"
    form = admin_client.get(f"{url}export/").context["form"]
    exported = read_csv(admin_client.post(f"{url}export/", export_data(form)))
    assert {(row["id"], row["external_id"]) for row in exported} >= {(str(record.pk), "crm2-7")}


@pytest.mark.parametrize("kind", KINDS)
def test_a_row_without_id_updates_the_record_with_its_external_id(admin_client, kind):
    model, url, values, text = KINDS[kind]
    customer = CustomerFactory()
    header, row = rows_of({**values, "external_id": "crm2-8"}, customer)
    import_rows(admin_client, url, [header, row])
    before = model.objects.count()

    changed = [("Again" if name == text else cell) for name, cell in zip(header, row, strict=True)]
    import_rows(admin_client, url, [header, changed])

    assert model.objects.count() == before
    assert getattr(model.objects.get(external_id="crm2-8"), text) == "Again"


@pytest.mark.parametrize("kind", KINDS)
def test_two_rows_with_one_external_id_and_a_taken_one_are_row_errors(admin_client, kind):
    model, url, values, text = KINDS[kind]
    customer = CustomerFactory()
    header, row = rows_of({**values, "external_id": "crm2-9"}, customer)
    import_rows(admin_client, url, [header, row])
    before = model.objects.count()

    # Two rows naming one record: the second is an error.
    preview = upload(admin_client, url, [header, row, row])
    invalid = [line.number for line in preview.context["result"].invalid_rows]
    errors = [line.number for line in preview.context["result"].row_errors()]
    assert invalid + errors == [2]
    assert model.objects.count() == before


@pytest.mark.parametrize("kind", KINDS)
def test_a_rep_cannot_reach_another_books_record_by_its_external_id(kind):
    model, url, values, text = KINDS[kind]
    rep_a, rep_b = (UserFactory(username=name, is_staff=True) for name in ("rep_a", "rep_b"))
    for rep in (rep_a, rep_b):
        rep.groups.add(Group.objects.get(name="Sales rep"))
    theirs, mine = CustomerFactory(owner=rep_b), CustomerFactory(owner=rep_a)
    model_values = {**values, "external_id": "crm2-10"}
    client_b, client_a = Client(), Client()
    client_b.force_login(rep_b)
    client_a.force_login(rep_a)
    import_rows(client_b, url, rows_of(model_values, theirs))
    record = model.objects.get(external_id="crm2-10")

    header, row = rows_of(model_values, mine)
    changed = [("Taken over" if name == text else cell) for name, cell in zip(header, row, strict=True)]
    preview = upload(client_a, url, [header, changed])

    result = preview.context["result"]
    assert [line.number for line in result.invalid_rows] == [1]
    assert result.invalid_rows[0].field_specific_errors == {
        "external_id": ["A record with this external_id already exists."]
    }
    record.refresh_from_db()
    assert getattr(record, text) == "Imported"
